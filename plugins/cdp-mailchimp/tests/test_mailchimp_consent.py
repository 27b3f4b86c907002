"""Consent on export to a Mailchimp audience: a person who revoked email consent is never sent.

People come from a real profile store (SQLite and PostgreSQL) with their consent
decisions (cdp_profiles.testing.ConsentExport); every request body is inspected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import respx
from cdp_core.http import HttpFactory
from cdp_core.plugins import Plugins
from cdp_core.testing import kit_plugin
from cdp_profiles.testing import ANA, CLEO, ConsentExport, request_bodies
from fake_mailchimp import KEY, LIST_ID, FakeMailchimp

import cdp_mailchimp

DESTINATION = f"""
[connectors.out]
type = "mailchimp"
api_key = "${{MAILCHIMP_API_KEY}}"
list_id = "{LIST_ID}"
"""


@pytest.fixture
def plugins(register_plugin: Any) -> Plugins:
    return register_plugin(cdp_mailchimp, extra=[kit_plugin, "profiles"])


def test_a_person_who_revoked_email_consent_is_never_sent(
    tmp_path: Path, store_url: str, plugins: Plugins, cdp_http: HttpFactory, cdp_respx: respx.Router
) -> None:
    api = FakeMailchimp().install(cdp_respx)
    # No purpose in the graph: mailchimp serves "email" by default.
    export = ConsentExport(tmp_path, store_url, plugins, DESTINATION, node='options = { status_if_new = "subscribed" }',
                           env={"MAILCHIMP_API_KEY": KEY}, services={"http": cdp_http})  # fmt: skip
    export.ingest()
    run = export.export()
    bodies = request_bodies(cdp_respx)
    assert sorted(m["email_address"] for b in api.batches for m in b["members"]) == [ANA.email, CLEO.email]
    export.assert_first_export(run, bodies, "email")

    # A later revocation holds Cleo back from the next export (checked at sending time).
    _, later = export.export_after_revocation(cdp_respx, CLEO, "email")
    export.assert_absent(later, CLEO)
    export.assert_present(later, ANA)
