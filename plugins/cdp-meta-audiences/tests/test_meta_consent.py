"""Consent on export to a Meta Custom Audience: a person who revoked ads consent is never uploaded, and removed later.

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
from cdp_profiles.testing import ANA, BEN, CLEO, ConsentExport, request_bodies
from meta_fake import AUDIENCE, FakeGraph

import cdp_meta_audiences

DESTINATION = f"""
[connectors.out]
type = "meta_audiences"
access_token = "${{META_ACCESS_TOKEN}}"
audience_id = "{AUDIENCE}"
graph_version = "v22.0"
schema = ["EMAIL", "PHONE", "FN"]
"""


@pytest.fixture
def plugins(register_plugin: Any) -> Plugins:
    return register_plugin(cdp_meta_audiences, extra=[kit_plugin, "profiles"])


def test_a_revoked_person_is_never_uploaded_and_a_later_revocation_removes_the_member(
    tmp_path: Path, store_url: str, plugins: Plugins, cdp_http: HttpFactory, cdp_respx: respx.Router, graph: FakeGraph
) -> None:
    # No purpose in the graph: meta_audiences serves "ads" by default.
    export = ConsentExport(tmp_path, store_url, plugins, DESTINATION,
                           env={"META_ACCESS_TOKEN": "meta-token"}, services={"http": cdp_http})  # fmt: skip
    export.ingest()
    run = export.export()
    bodies = request_bodies(cdp_respx)
    assert graph.methods() == ["POST"] and len(graph.rows("POST")) == 2
    export.assert_first_export(run, bodies, "ads")
    export.assert_present(bodies, CLEO)

    # Cleo revokes ads consent: the next run is not fed her, and the mirror removes her.
    _, removal = export.export_after_revocation(cdp_respx, CLEO, "ads")
    assert graph.methods()[1:] == ["DELETE"], "one removal, nothing added"
    export.assert_present(removal, CLEO)
    export.assert_absent(removal, ANA)
    export.assert_absent(request_bodies(cdp_respx), BEN)
