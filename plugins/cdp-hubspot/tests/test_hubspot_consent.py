"""Consent on the HubSpot write-back: a person who revoked crm consent is never written to.

People come from a real profile store (SQLite and PostgreSQL) with their consent
decisions (cdp_profiles.testing.ConsentExport); every request body is inspected.
"""

from __future__ import annotations

from pathlib import Path

import respx
from cdp_core.http import HttpFactory
from cdp_core.testing import RegisterPlugin, kit_plugin
from cdp_profiles.testing import ANA, BEN, CLEO, PEOPLE, ConsentExport, request_bodies
from hubspot_fake import TOKEN, FakeHubSpot, contact

import cdp_hubspot

DESTINATION = """
[connectors.out]
type = "hubspot"
access_token = "${HUBSPOT_TOKEN}"
"""


def test_a_person_who_revoked_crm_consent_is_never_written_back(
    tmp_path: Path, store_url: str, register_plugin: RegisterPlugin, cdp_http: HttpFactory, cdp_respx: respx.Router
) -> None:
    hub = FakeHubSpot().install(cdp_respx)
    hub.objects["contacts"] = [contact(int(p.hubspot_contact_id), minutes=1) for p in PEOPLE]
    plugins = register_plugin(cdp_hubspot, extra=[kit_plugin, "profiles"])
    # No purpose in the graph: hubspot serves "crm" (opt-out) by default.
    export = ConsentExport(tmp_path, store_url, plugins, DESTINATION,
                           node='options = { properties = { firstname = "first_name" } }',
                           env={"HUBSPOT_TOKEN": TOKEN}, services={"http": cdp_http})  # fmt: skip
    export.ingest()
    run = export.export()
    assert hub.updated == {ANA.hubspot_contact_id: {"firstname": "Ana"}, CLEO.hubspot_contact_id: {"firstname": "Cleo"}}
    bodies = request_bodies(cdp_respx)
    assert all(f'"{BEN.hubspot_contact_id}"' not in body for body in bodies)
    export.assert_absent(bodies, BEN)
    assert run.nodes["out"].held_back == {"crm consent revoked": 1}
    export.assert_held_back_in_cdp_runs(run, "out", {"crm consent revoked": 1})

    _, later = export.export_after_revocation(cdp_respx, CLEO, "crm")
    assert len(later) == 1 and f'"{ANA.hubspot_contact_id}"' in later[0]
    assert f'"{CLEO.hubspot_contact_id}"' not in later[0]
