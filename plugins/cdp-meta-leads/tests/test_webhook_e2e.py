"""Meta lead ads end to end: signed leadgen events through `cdp serve`'s application,
then a graph on the webhook streams run by the real runner, which reads each lead once with ``GET /{leadgen_id}``; the
profile store holds the records the pull streams make, and a later pull updates them. Both databases. (The
subscription handshake through `cdp serve`: the conformance suite's, test_meta_leads_webhook_conformance.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import respx
from cdp_core.http import HttpFactory
from cdp_core.testing import RegisterPlugin
from cdp_core.testing.serve import Served, serve_config
from meta_fake import APP_SECRET, FORM_A, FORM_B, TOKEN, FakeLead, FakeLeads, event, lead, leads_url, raw, route, sign

import cdp_meta_leads

VERIFY_TOKEN = "my-verify-token-4242"
CONFIG = f"""
[connectors.meta]
type = "meta_leads"
access_token = "${{META_ACCESS_TOKEN}}"
app_secret = "${{META_APP_SECRET}}"
verify_token = "${{META_VERIFY_TOKEN}}"
form_ids = ["{FORM_A}"]

[connectors.store]
type = "profile_store"

[syncs.live.nodes.leads]
source = "meta.webhook_leads"

[syncs.live.nodes.submissions]
source = "meta.webhook_submissions"

[syncs.live.nodes.store]
destination = "store"
inputs = ["leads", "submissions"]

[syncs.pull.nodes.leads]
source = "meta.leads"

[syncs.pull.nodes.submissions]
source = "meta.submissions"

[syncs.pull.nodes.store]
destination = "store"
inputs = ["leads", "submissions"]
"""
ENV = {"META_ACCESS_TOKEN": TOKEN, "META_APP_SECRET": APP_SECRET, "META_VERIFY_TOKEN": VERIFY_TOKEN}
LEAD = lead(7, "2024-05-01T09:59:58+0000")


@pytest.fixture
def served(tmp_path: Path, register_plugin: RegisterPlugin, store_url: str) -> Any:
    plugins = register_plugin(cdp_meta_leads, extra=["profiles"])
    with serve_config(tmp_path, CONFIG, plugins, env=ENV, store_url=store_url) as served:
        yield served


def post(served: Served, payload: dict[str, Any], signature: str | None = None) -> Any:
    body = raw(payload)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature or sign(body)}
    return served.client.post("/webhooks/meta", content=body, headers=headers)


def test_a_signed_leadgen_event_is_logged_once_a_bad_one_not_at_all(served: Served) -> None:
    payload = event((LEAD["id"], FORM_A))
    assert post(served, payload).json() == {"success": True, "accepted": 1, "duplicates": 0}
    assert post(served, payload).json() == {"success": True, "accepted": 0, "duplicates": 1}  # Meta's retry
    other = event(("700099", FORM_A))
    assert post(served, other, sign(raw(other), "not-the-app-secret")).status_code == 401
    assert post(served, other, sign(raw(other)).replace("sha256=", "sha1=")).status_code == 401
    [row] = served.logged()
    assert (row.source, row.message_id, row.kind) == ("meta", LEAD["id"], "leadgen")
    assert row.body["form_id"] == FORM_A and row.body["page_id"] == "444444444444"


def test_the_graph_reads_each_lead_and_stores_the_pull_streams_records(
    served: Served, cdp_respx: respx.Router, cdp_http: HttpFactory
) -> None:
    other_form = lead(8, "2024-05-01T09:59:59+0000", form=FORM_B)
    fake = FakeLead(LEAD, other_form)
    route(cdp_respx, fake)
    assert post(served, event((LEAD["id"], FORM_A), (other_form["id"], FORM_B))).json()["accepted"] == 2
    services = {"http": cdp_http}
    live = served.run("live", services=services)
    assert live.status == "succeeded", live.error
    assert (live.nodes["leads"].records_out, live.nodes["submissions"].records_out) == (1, 1)
    # only the lead of a form in form_ids is read, once for both streams, with the pull streams' fields
    assert [r.url.path for r in fake.requests] == [f"/v21.0/{LEAD['id']}"]
    assert fake.requests[0].url.params["fields"] == "id,created_time,field_data,ad_id,campaign_id"
    assert fake.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"

    index = "SELECT stream, key, kind FROM record_index ORDER BY stream"
    assert served.query(index) == [("meta.leads", LEAD["id"], "profile"), ("meta.submissions", LEAD["id"], "event")]
    assert served.query("SELECT value FROM identities WHERE type = 'email'") == [("lead7@example.com",)]

    # The pull of the same form finds the lead, its answers corrected since: the same rows, updated.
    corrected = LEAD | {"field_data": [{"name": "email", "values": ["lead7@example.com"]},
                                       {"name": "city", "values": ["Bremen"]}]}  # fmt: skip
    cdp_respx.get(leads_url(FORM_A)).mock(side_effect=FakeLeads(FORM_A, [corrected]))
    pull = served.run("pull", services=services)
    assert pull.status == "succeeded", pull.error
    assert (pull.nodes["leads"].records_out, pull.nodes["submissions"].records_out) == (1, 1)
    assert served.query(index) == [("meta.leads", LEAD["id"], "profile"), ("meta.submissions", LEAD["id"], "event")]
    assert served.query("SELECT count(*) FROM profiles WHERE merged_into IS NULL") == [(1,)]
    assert served.query("SELECT count(*) FROM events") == [(1,)]
    [(data,)] = served.query("SELECT data FROM profile_records")
    assert (json.loads(data) if isinstance(data, str) else data)["city"] == "Bremen"  # SQLite: JSON text


def test_a_lead_meta_no_longer_has_is_quarantined_with_metas_reason(
    served: Served, cdp_respx: respx.Router, cdp_http: HttpFactory
) -> None:
    route(cdp_respx, FakeLead())
    assert post(served, event(("700042", FORM_A))).status_code == 200
    run = served.run("live", services={"http": cdp_http})
    assert run.status == "succeeded", run.error
    assert run.nodes["leads"].rejected == 1
    [entry] = served.system.quarantine("live", "leads")
    assert "meta leadgen 700042" in entry["reason"] and "does not exist" in entry["reason"]
    assert entry["payload"]["message_id"] == "700042"
