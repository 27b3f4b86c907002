"""Typeform end to end: a signed form_response through `cdp serve`'s application into the ingest log, the graph on
``webhook_responses`` run by the real runner into the profile store, and a later pull of the same response updating
that answer instead of adding one. Both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import respx
from cdp_core.http import HttpFactory
from cdp_core.testing import RegisterPlugin
from cdp_core.testing.serve import Served, serve_config
from fake_typeform import FORM_ID, SECRET, TOKEN, FakeTypeform, event, raw, response, sign

import cdp_typeform

CONFIG = f"""
[connectors.survey]
type = "typeform"
token = "${{TYPEFORM_TOKEN}}"
webhook_secret = "${{TYPEFORM_WEBHOOK_SECRET}}"
form_id = "{FORM_ID}"
score_field = "nps"
comment_field = "why"
channel_field = "channel"

[connectors.store]
type = "profile_store"

[syncs.live.nodes.answers]
source = "survey.webhook_responses"

[syncs.live.nodes.store]
destination = "store"
inputs = ["answers"]

[syncs.pull.nodes.answers]
source = "survey.responses"

[syncs.pull.nodes.store]
destination = "store"
inputs = ["answers"]
"""
ENV = {"TYPEFORM_TOKEN": TOKEN, "TYPEFORM_WEBHOOK_SECRET": SECRET}
RESPONSE_TOKEN = "a3a12ec67a1365927098a606107fac15"


@pytest.fixture
def served(tmp_path: Path, register_plugin: RegisterPlugin, store_url: str) -> Any:
    plugins = register_plugin(cdp_typeform, extra=["profiles"])
    with serve_config(tmp_path, CONFIG, plugins, env=ENV, store_url=store_url) as served:
        yield served


def post(served: Served, payload: dict[str, Any], signature: str | None = None) -> Any:
    body = raw(payload)
    headers = {"Content-Type": "application/json", "Typeform-Signature": signature or sign(body)}
    return served.client.post("/webhooks/survey", content=body, headers=headers)


def test_a_signed_response_is_logged_once_a_bad_one_not_at_all(served: Served) -> None:
    assert post(served, event(9)).json() == {"success": True, "accepted": 1, "duplicates": 0}
    assert post(served, event(9)).json() == {"success": True, "accepted": 0, "duplicates": 1}  # Typeform's retry
    forged = event(0, token="forged0000")
    assert post(served, forged, sign(raw(forged), "another-secret")).status_code == 401
    assert post(served, forged, sign(raw(event(9)))).status_code == 401  # another body's signature
    [row] = served.logged()
    assert (row.source, row.message_id, row.kind) == ("survey", RESPONSE_TOKEN, "form_response")


def test_the_answer_is_the_pull_streams_record_and_a_later_pull_updates_it(
    served: Served, cdp_respx: respx.Router, cdp_http: HttpFactory
) -> None:
    assert post(served, event(9)).status_code == 200
    services = {"http": cdp_http}
    live = served.run("live", services=services)
    assert live.status == "succeeded", live.error
    assert live.nodes["answers"].records_out == 1
    answers = "SELECT stream, key, score, category, comment FROM nps_responses"
    assert served.query(answers) == [("survey.responses", RESPONSE_TOKEN, 9, "promoter", "Great coffee")]
    assert served.query("SELECT value FROM identities WHERE type = 'email'") == [("anna@example.com",)]

    FakeTypeform(
        [response(RESPONSE_TOKEN, "2024-05-01T09:59:58Z", 10, comment="Great coffee!", email="anna@example.com")]
    ).install(cdp_respx)
    pull = served.run("pull", services=services)
    assert pull.status == "succeeded", pull.error
    assert pull.nodes["answers"].records_out == 1
    assert served.query(answers) == [("survey.responses", RESPONSE_TOKEN, 10, "promoter", "Great coffee!")]
    assert served.query("SELECT count(*) FROM record_index") == [(1,)]
    assert served.query("SELECT count(*) FROM profiles WHERE merged_into IS NULL") == [(1,)]


def test_a_response_without_a_score_is_quarantined_with_the_reason(served: Served, cdp_http: HttpFactory) -> None:
    assert post(served, event(None, token="noscore0001")).status_code == 200
    assert post(served, event(7)).status_code == 200
    run = served.run("live", services={"http": cdp_http})
    assert run.status == "succeeded", run.error
    assert (run.nodes["answers"].records_out, run.nodes["answers"].rejected) == (1, 1)
    [entry] = served.system.quarantine("live", "answers")
    assert entry["reason"].startswith("typeform: ") and "score" in entry["reason"]
    assert entry["payload"]["message_id"] == "noscore0001"
    assert served.query("SELECT key, score FROM nps_responses") == [(RESPONSE_TOKEN, 7)]
