"""Forget requests carried to the destinations: queued with queue_targets, delivered against mocked vendors.

HubSpot and Mailchimp answer in their documented shapes (respx); a JSONL file cannot forget
(``unsupported``). Time is pinned: each delivery pass is given its ``now``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cdp_hubspot
import cdp_mailchimp
import httpx
import pytest
import respx
from cdp_core.config import Config, load_config
from cdp_core.http import HttpFactory
from cdp_core.testing import kit_plugin, load_test_plugins
from sqlalchemy import Engine, insert, select
from typer.testing import CliRunner

from cdp_profiles.privacy.config import privacy_of
from cdp_profiles.privacy.delivery import MAX_ATTEMPTS, backoff, deliver_due
from cdp_profiles.privacy.keys import PrivacyKey
from cdp_profiles.privacy.person import Person
from cdp_profiles.privacy.targets import queue_targets
from cdp_profiles.store import tables

KEY = "k" * 40
HUBSPOT_TOKEN = "pat-na1-secret-token"
MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us21"
GDPR = "https://api.hubapi.com/crm/v3/objects/contacts/gdpr-delete"
EMAIL = "ana@example.com"
PERMANENT = (
    "https://us21.api.mailchimp.com/3.0/lists/a1b2c3d4e5/members/"
    f"{hashlib.md5(EMAIL.encode()).hexdigest()}/actions/delete-permanent"
)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_targets, _requests = tables.privacy_targets, tables.privacy_requests

TOML = """
[store]
url = "{url}"

[privacy]
key = "${{CDP_PRIVACY_KEY}}"

[connectors.crm]
type = "hubspot"
access_token = "${{HUBSPOT_TOKEN}}"

[connectors.newsletter]
type = "mailchimp"
api_key = "${{MAILCHIMP_KEY}}"
list_id = "a1b2c3d4e5"

[connectors.archive]
type = "jsonl_file"
path = "out.jsonl"
"""


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Config:
    path = tmp_path / "connectors.toml"
    path.write_text(TOML.format(url=store_url))
    plugins = load_test_plugins(kit_plugin, "profiles", cdp_hubspot, cdp_mailchimp)
    env = {"CDP_PRIVACY_KEY": KEY, "HUBSPOT_TOKEN": HUBSPOT_TOKEN, "MAILCHIMP_KEY": MAILCHIMP_KEY}
    return load_config(path, plugins, env=env)


def queue(engine: Engine, config: Config, request_id: str = "r1") -> None:
    """A forget request as the forget command writes it: the audit row, then one target per destination."""
    person = Person(
        profile_id="p1", profile_ids=["p1"],
        identifiers=[("email", EMAIL), ("hubspot_contact_id", "101"), ("phone", "+491711234567")],
    )  # fmt: skip
    key = PrivacyKey.of(privacy_of(config.sections).key)
    with engine.begin() as conn:
        conn.execute(insert(_requests).values(id=request_id, kind="forget", created_at=T0, outcome="pending"))
        queue_targets(conn, config, request_id, person, [], key, T0)


def targets(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {r.destination: dict(r._mapping) for r in conn.execute(select(_targets))}


def request(engine: Engine, request_id: str = "r1") -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(_requests).where(_requests.c.id == request_id)).one()._mapping)


def test_delivered_to_each_vendor_and_settled(
    config: Config, store_engine: Engine, cdp_respx: respx.Router, cdp_http: HttpFactory
) -> None:
    hubspot = cdp_respx.post(GDPR).mock(return_value=httpx.Response(204))
    mailchimp = cdp_respx.post(PERMANENT).mock(return_value=httpx.Response(204))
    queue(store_engine, config)
    assert targets(store_engine)["archive"]["state"] == "unsupported"

    delivered = deliver_due(config, store_engine, T0, http=cdp_http)

    assert json.loads(hubspot.calls[0].request.content) == {"objectId": "101"}
    assert hubspot.calls[0].request.headers["Authorization"] == f"Bearer {HUBSPOT_TOKEN}"
    assert mailchimp.call_count == 1
    held = targets(store_engine)
    assert {n: (t["state"], t["attempts"], t["payload"]) for n, t in held.items()} == {
        "crm": ("done", 1, None), "newsletter": ("done", 1, None), "archive": ("unsupported", 0, None),
    }  # fmt: skip
    assert held["crm"]["answer"] == "HubSpot 204: contact erased"
    assert delivered.settled == {"r1": "done"}
    settled = request(store_engine)
    assert settled["outcome"] == "done" and settled["finished_at"] is not None
    assert deliver_due(config, store_engine, T0 + timedelta(days=1), http=cdp_http).states == {}


def test_a_throttled_vendor_is_asked_again_after_the_backoff(
    config: Config, store_engine: Engine, cdp_respx: respx.Router, cdp_http: HttpFactory
) -> None:
    hubspot = cdp_respx.post(GDPR).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3600"}, json={"message": "slow"}),
            httpx.Response(204),
        ]
    )
    cdp_respx.post(PERMANENT).mock(return_value=httpx.Response(404, json={"title": "Resource Not Found"}))
    queue(store_engine, config)

    deliver_due(config, store_engine, T0, http=cdp_http)
    crm = targets(store_engine)["crm"]
    assert (crm["state"], crm["attempts"]) == ("pending", 1)
    assert crm["payload"] is not None and crm["answer"].startswith("HubSpot 429")
    assert crm["next_attempt_at"].replace(tzinfo=UTC) == T0 + timedelta(hours=1)  # Retry-After beats the 5 minutes
    assert targets(store_engine)["newsletter"]["state"] == "done"  # 404: nothing held
    assert request(store_engine)["outcome"] == "pending"

    deliver_due(config, store_engine, T0 + timedelta(minutes=59), http=cdp_http)
    assert hubspot.call_count == 1  # not due yet
    deliver_due(config, store_engine, T0 + timedelta(hours=1), http=cdp_http)
    assert hubspot.call_count == 2
    assert targets(store_engine)["crm"]["state"] == "done"
    assert request(store_engine)["outcome"] == "done"


def test_gives_up_after_max_attempts_and_keeps_the_sealed_payload(
    config: Config, store_engine: Engine, cdp_respx: respx.Router, cdp_http: HttpFactory
) -> None:
    cdp_respx.post(GDPR).mock(return_value=httpx.Response(503, json={"message": "down"}))
    cdp_respx.post(PERMANENT).mock(return_value=httpx.Response(204))
    queue(store_engine, config)
    now = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        deliver_due(config, store_engine, now, http=cdp_http)
        now += backoff(attempt)
    crm = targets(store_engine)["crm"]
    assert (crm["state"], crm["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert crm["answer"].startswith(f"gave up after {MAX_ATTEMPTS} attempts: HubSpot 503")
    assert crm["payload"] is not None
    assert request(store_engine)["outcome"] == "failed"


def test_a_refusal_fails_at_once_without_identifier_or_secret(
    config: Config, store_engine: Engine, cdp_respx: respx.Router, cdp_http: HttpFactory
) -> None:
    body = {"status": "error", "category": "MISSING_SCOPES", "message": f"no scope to delete {EMAIL} ({HUBSPOT_TOKEN})"}
    cdp_respx.post(GDPR).mock(return_value=httpx.Response(403, json=body))
    cdp_respx.post(PERMANENT).mock(side_effect=httpx.ConnectError("refused"))
    queue(store_engine, config)
    deliver_due(config, store_engine, T0, http=cdp_http)
    held = targets(store_engine)
    assert held["crm"]["state"] == "failed" and held["crm"]["answer"].startswith("HubSpot 403")
    assert held["newsletter"]["state"] == "pending"  # no answer at all: asked again
    for target in held.values():
        answer = target["answer"] or ""
        assert EMAIL not in answer and HUBSPOT_TOKEN not in answer and MAILCHIMP_KEY not in answer


def test_a_destination_gone_from_the_config_fails_with_that_answer(
    config: Config, store_engine: Engine, cdp_http: HttpFactory
) -> None:
    queue(store_engine, config)
    del config.connectors["crm"], config.connectors["newsletter"]
    deliver_due(config, store_engine, T0, http=cdp_http)
    crm = targets(store_engine)["crm"]
    assert crm["state"] == "failed" and "no longer in connectors.toml" in crm["answer"]


def test_status_lists_states_and_unsupported_destinations(
    config: Config, store_engine: Engine, cdp_respx: respx.Router, cdp_http: HttpFactory
) -> None:
    from cdp_core.cli import build_app

    cdp_respx.post(GDPR).mock(return_value=httpx.Response(503, json={"message": "down"}))
    cdp_respx.post(PERMANENT).mock(return_value=httpx.Response(204))
    queue(store_engine, config)
    deliver_due(config, store_engine, T0, http=cdp_http)
    env = {"CDP_PRIVACY_KEY": KEY, "HUBSPOT_TOKEN": HUBSPOT_TOKEN, "MAILCHIMP_KEY": MAILCHIMP_KEY}
    result = CliRunner().invoke(build_app(), ["privacy", "status", "--json", "--config", str(config.path)], env=env)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["id"], row["kind"], row["outcome"]) == ("r1", "forget", "pending")
    states = {t["destination"]: (t["state"], t["attempts"]) for t in row["destinations"]}
    assert states == {"archive": ("unsupported", 0), "crm": ("pending", 1), "newsletter": ("done", 1)}
    archive = next(t for t in row["destinations"] if t["destination"] == "archive")
    assert "by hand" in archive["answer"]
    assert EMAIL not in result.stdout and "101" not in json.dumps(row["destinations"])
