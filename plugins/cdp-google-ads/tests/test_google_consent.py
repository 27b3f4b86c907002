"""Consent on export to a Google Customer Match list: a person who revoked ads consent is never uploaded, and removed later.

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
from google_fake import USER_LIST, FakeGoogleAds

import cdp_google_ads

DESTINATION = f"""
[connectors.out]
type = "google_ads"
developer_token = "${{GOOGLE_ADS_DEVELOPER_TOKEN}}"
client_secret = "${{GOOGLE_ADS_CLIENT_SECRET}}"
refresh_token = "${{GOOGLE_ADS_REFRESH_TOKEN}}"
customer_id = "123-456-7890"
login_customer_id = "987-654-3210"
user_list_id = "{USER_LIST}"
client_id = "client-id.apps.googleusercontent.com"
"""
ENV = {
    "GOOGLE_ADS_DEVELOPER_TOKEN": "dev-token-secret",
    "GOOGLE_ADS_CLIENT_SECRET": "client-secret-value",
    "GOOGLE_ADS_REFRESH_TOKEN": "refresh-token-value",
}


@pytest.fixture
def plugins(register_plugin: Any) -> Plugins:
    return register_plugin(cdp_google_ads, extra=[kit_plugin, "profiles"])


def test_a_revoked_person_is_never_uploaded_and_a_later_revocation_removes_the_member(
    tmp_path: Path, store_url: str, plugins: Plugins, cdp_http: HttpFactory, cdp_respx: respx.Router,
    google: FakeGoogleAds,
) -> None:  # fmt: skip
    # The graph says it explicitly (google_ads serves "ads" by default anyway).
    export = ConsentExport(tmp_path, store_url, plugins, DESTINATION, node='purpose = "ads"', env=ENV,
                           services={"http": cdp_http})  # fmt: skip
    export.ingest()
    run = export.export()
    bodies = request_bodies(cdp_respx)
    assert len(google.ops("create")) == 2 and google.ops("remove") == []
    export.assert_first_export(run, bodies, "ads")
    export.assert_present(bodies, CLEO)

    # Cleo revokes ads consent: the next run is not fed her, and the mirror removes her.
    _, removal = export.export_after_revocation(cdp_respx, CLEO, "ads")
    assert len(google.ops("remove")) == 1 and len(google.ops("create")) == 2, "one removal, nothing added"
    export.assert_present(removal, CLEO)
    export.assert_absent(removal, ANA)
    export.assert_absent(request_bodies(cdp_respx), BEN)
