"""`cdp serve`'s application through the ASGI test client: every endpoint and every bad input.

The store is real (SQLite and PostgreSQL, ``store_url``): an accepted message is read back
from the ingest log, a refused request is shown to have stored nothing.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from cdp_core.base import ConnectorContext, NoOptions
from cdp_core.ingest import GroupCommitter, IngestEntry
from cdp_core.ingest.log import LOG, AppendResult
from cdp_core.serve.app import KeyedSource, ServeState, build_app
from cdp_core.serve.ratelimit import TokenBucket
from cdp_core.store.engine import make_engine
from cdp_core.store.schema import create_schema
from cdp_core.webhooks import Webhook

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WEB_KEY, APP_KEY = "wk_web_secret", "wk_app_secret"
HOOK_SECRET = b"hook-secret"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ToyWebhook(Webhook):
    """Signed like Shopify's: base64 HMAC-SHA256 of the raw body in X-Toy-Hmac; id in X-Toy-Id."""

    def handshake(self, query: Mapping[str, str]) -> str | None:
        return query.get("challenge") if query.get("token") == "verify-me" else None

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        expected = base64.b64encode(hmac.new(HOOK_SECRET, body, hashlib.sha256).digest()).decode()
        return hmac.compare_digest(expected, headers.get("x-toy-hmac", ""))

    def entries(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[IngestEntry]:
        data = json.loads(body)
        if "id" not in data:
            raise ValueError("a delivery needs 'id'")
        return [IngestEntry(self.context.name, headers.get("x-toy-id", ""), "toys/create", data, received_at)]


class PostOnlyWebhook(ToyWebhook):
    """The toy without a subscription check (as Shopify's and Typeform's)."""

    handshake = Webhook.handshake


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(engine: Engine, clock: Clock) -> Iterator[ServeState]:
    committer = GroupCommitter(engine)
    sources = [KeyedSource("web", WEB_KEY), KeyedSource("app", APP_KEY, TokenBucket(2.0, 5.0, clock=clock))]
    hook = ToyWebhook(NoOptions(), ConnectorContext(name="toys"))
    post_only = PostOnlyWebhook(NoOptions(), ConnectorContext(name="posts"))
    state = ServeState(engine, committer, sources, {"toys": hook, "posts": post_only}, now=lambda: NOW)
    state.unverifiable = {"locked": "[connectors.locked] sets no secret"}
    yield state
    committer.close()


@pytest.fixture
def client(state: ServeState) -> Iterator[TestClient]:
    with TestClient(build_app(state)) as client:
        yield client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(LOG).order_by(LOG.c.id)))


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(LOG)).scalar_one())


MESSAGES: dict[str, dict[str, Any]] = {
    "identify": {"userId": "u1", "traits": {"email": "jo@example.com"}},
    "track": {"anonymousId": "a1", "event": "Signed Up", "properties": {"plan": "pro"}},
    "page": {"userId": "u1", "name": "Pricing"},
    "screen": {"userId": "u1", "name": "Home"},
    "group": {"userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}},
    "alias": {"userId": "u1", "previousId": "a1"},
}


# -- the calls --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_each_call_is_stored_before_the_answer(client: TestClient, engine: Engine, kind: str) -> None:
    response = client.post(f"/v1/{kind}", json={**MESSAGES[kind], "messageId": f"m-{kind}"}, headers=auth(WEB_KEY))
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0}
    [row] = rows(engine)
    assert (row.source, row.message_id, row.kind) == ("web", f"m-{kind}", kind)
    assert row.body["type"] == kind and row.body["messageId"] == f"m-{kind}"


def test_a_batch_stores_every_message_with_the_shared_context(client: TestClient, engine: Engine) -> None:
    batch = [
        {"type": "identify", "userId": "u1", "messageId": "b1", "context": {"ip": "1.2.3.4"}},
        {"type": "track", "userId": "u1", "event": "Clicked", "messageId": "b2"},
    ]
    body = {"batch": batch, "context": {"library": {"name": "analytics-python"}}, "sentAt": "2024-05-01T12:00:00Z"}
    response = client.post("/v1/batch", json=body, headers=auth(WEB_KEY))
    assert response.json() == {"success": True, "accepted": 2, "duplicates": 0}
    first, second = rows(engine)
    assert first.body["context"] == {"library": {"name": "analytics-python"}, "ip": "1.2.3.4"}
    assert second.body["sentAt"] == "2024-05-01T12:00:00Z" and second.kind == "track"


def test_the_write_key_may_come_in_the_body(client: TestClient, engine: Engine) -> None:
    response = client.post("/v1/track", json={"writeKey": APP_KEY, "userId": "u1", "event": "E", "messageId": "k1"})
    assert response.status_code == 200
    [row] = rows(engine)
    assert row.source == "app" and "writeKey" not in row.body  # the key is never stored


def test_analytics_js_short_paths_and_cors(client: TestClient, engine: Engine) -> None:
    message = {"writeKey": WEB_KEY, "userId": "u1", "event": "E", "messageId": "short"}
    response = client.post("/v1/t", content=json.dumps(message), headers={"Content-Type": "text/plain", "Origin": "https://shop.example"})
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"
    assert [(r.kind, r.message_id) for r in rows(engine)] == [("track", "short")]


def test_a_message_without_message_id_gets_one(client: TestClient, engine: Engine) -> None:
    assert client.post("/v1/track", json={"userId": "u1", "event": "E"}, headers=auth(WEB_KEY)).status_code == 200
    [row] = rows(engine)
    assert row.message_id.startswith("cdp-") and row.body["messageId"] == row.message_id


def test_a_repeated_message_id_is_answered_200_and_dropped(client: TestClient, engine: Engine) -> None:
    message = {"userId": "u1", "event": "Paid", "messageId": "same"}
    assert client.post("/v1/track", json=message, headers=auth(WEB_KEY)).json()["accepted"] == 1
    again = client.post("/v1/track", json={**message, "event": "Other"}, headers=auth(WEB_KEY))
    assert again.status_code == 200 and again.json() == {"success": True, "accepted": 0, "duplicates": 1}
    batch = client.post("/v1/batch", json={"batch": [{**message, "type": "track"}, {**message, "type": "track"}]}, headers=auth(WEB_KEY))
    assert batch.json() == {"success": True, "accepted": 0, "duplicates": 2}
    assert [r.body["event"] for r in rows(engine)] == ["Paid"]


def test_a_gzip_body_is_read(client: TestClient, engine: Engine) -> None:
    raw = gzip.compress(json.dumps({"batch": [{"type": "track", "userId": "u", "event": "Z", "messageId": "z"}]}).encode())
    headers = {**auth(WEB_KEY), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = client.post("/v1/batch", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    assert [r.message_id for r in rows(engine)] == ["z"]


# -- bad input: 4xx with the reason, nothing stored ---------------------------------------------


def refused(response: Any, status: int, says: str) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and says in body["error"], body
    return response


def test_an_unknown_or_missing_write_key_gets_401(client: TestClient, engine: Engine) -> None:
    message = {"userId": "u1", "event": "E"}
    refused(client.post("/v1/track", json=message, headers=auth("wk_nobody")), 401, "unknown write key")
    refused(client.post("/v1/track", json={**message, "writeKey": "wk_nobody"}), 401, "unknown write key")
    refused(client.post("/v1/track", json=message), 401, "no write key")
    refused(client.post("/v1/track", json=message, headers={"Authorization": "Basic !!!"}), 401, "not valid HTTP basic")
    assert stored(engine) == 0


def test_bad_json_gets_400(client: TestClient, engine: Engine) -> None:
    headers = {**auth(WEB_KEY), "Content-Type": "application/json"}
    refused(client.post("/v1/track", content=b'{"userId": ', headers=headers), 400, "not valid JSON")
    refused(client.post("/v1/track", content=b"[1, 2]", headers=headers), 400, "must be a JSON object")
    refused(client.post("/v1/track", content=b"\xff\xfe", headers=headers), 400, "not valid JSON")
    # Python's json reads these tokens, but they are not JSON (PostgreSQL's json type refuses them): 400, not a 503 later.
    nan = b'{"userId": "u1", "event": "x", "properties": {"price": NaN, "max": Infinity}}'
    refused(client.post("/v1/track", content=nan, headers=headers), 400, "NaN is not a JSON value")
    assert stored(engine) == 0


def test_a_message_over_32_kb_gets_400(client: TestClient, engine: Engine) -> None:
    big = {"userId": "u1", "event": "E", "properties": {"blob": "x" * 33_000}}
    refused(client.post("/v1/track", json=big, headers=auth(WEB_KEY)), 400, "32 KB")
    batch = {"batch": [{"type": "track", "userId": "u", "event": "ok", "messageId": "ok"}, {"type": "track", **big}]}
    refused(client.post("/v1/batch", json=batch, headers=auth(WEB_KEY)), 400, "batch[1]: the message is")
    assert stored(engine) == 0


def test_a_batch_over_500_kb_gets_400(client: TestClient, engine: Engine) -> None:
    message = {"type": "track", "userId": "u1", "event": "E", "properties": {"blob": "x" * 30_000}}
    batch = {"batch": [{**message, "messageId": f"m{i}"} for i in range(18)]}  # each under 32 KB, together over 500 KB
    refused(client.post("/v1/batch", json=batch, headers=auth(WEB_KEY)), 400, "at most 500 KB")
    # the limit holds for the body as sent once gzip is undone, too
    headers = {**auth(WEB_KEY), "Content-Encoding": "gzip"}
    refused(client.post("/v1/batch", content=gzip.compress(json.dumps(batch).encode()), headers=headers), 400, "uncompressed")
    assert stored(engine) == 0


def test_a_body_that_is_not_gzip_or_of_an_unknown_encoding_gets_400(client: TestClient) -> None:
    refused(client.post("/v1/track", content=b"plain", headers={**auth(WEB_KEY), "Content-Encoding": "gzip"}), 400, "not valid gzip")
    refused(client.post("/v1/track", content=b"x", headers={**auth(WEB_KEY), "Content-Encoding": "br"}), 400, "not supported")


@pytest.mark.parametrize(
    ("kind", "message", "says"),
    [
        ("track", {"event": "E"}, "needs 'userId' or 'anonymousId'"),
        ("identify", {"userId": "  "}, "needs 'userId' or 'anonymousId'"),
        ("track", {"userId": "u1"}, "needs 'event'"),
        ("alias", {"userId": "u1"}, "needs 'userId' and 'previousId'"),
        ("group", {"userId": "u1"}, "needs 'groupId'"),
        ("identify", {"userId": "u1", "traits": ["a"]}, "'traits' must be an object"),
        ("identify", {"userId": {"id": 1}}, "'userId' must be a string"),
        ("track", {"userId": "u1", "event": "E", "timestamp": "yesterday"}, "'timestamp' is not an ISO 8601 time"),
        ("track", {"userId": "u1", "event": "E", "type": "identify"}, "type 'identify' sent to /v1/track"),
    ],
)
def test_a_message_that_breaks_the_spec_gets_400(
    client: TestClient, engine: Engine, kind: str, message: dict[str, Any], says: str
) -> None:
    refused(client.post(f"/v1/{kind}", json=message, headers=auth(WEB_KEY)), 400, says)
    assert stored(engine) == 0


def test_a_batch_with_one_bad_message_stores_none_of_it(client: TestClient, engine: Engine) -> None:
    batch = {"batch": [{"type": "track", "userId": "u", "event": "ok"}, {"type": "track", "event": "no id"}]}
    refused(client.post("/v1/batch", json=batch, headers=auth(WEB_KEY)), 400, "batch[1]: a message needs 'userId'")
    refused(client.post("/v1/batch", json={"batch": [{"type": "shout", "userId": "u"}]}, headers=auth(WEB_KEY)), 400, "'type' must be one of")
    refused(client.post("/v1/batch", json={"messages": []}, headers=auth(WEB_KEY)), 400, "needs 'batch'")
    assert stored(engine) == 0


def test_an_unknown_call_gets_404(client: TestClient) -> None:
    refused(client.post("/v1/shout", json={"userId": "u"}, headers=auth(WEB_KEY)), 404, "no call /v1/shout")


def test_over_the_rate_limit_gets_429_with_retry_after(client: TestClient, engine: Engine, clock: Clock) -> None:
    """app: 2 messages a second, a burst of 5."""
    batch = {"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": f"r{i}"} for i in range(4)]}
    assert client.post("/v1/batch", json=batch, headers=auth(APP_KEY)).status_code == 200
    track = {"userId": "u", "event": "E", "messageId": "r4"}
    assert client.post("/v1/track", json=track, headers=auth(APP_KEY)).status_code == 200
    limited = client.post("/v1/track", json={**track, "messageId": "r5"}, headers=auth(APP_KEY))
    refused(limited, 429, "rate limit exceeded")
    assert limited.headers["Retry-After"] == "1"
    assert client.post("/v1/track", json={**track, "messageId": "w1"}, headers=auth(WEB_KEY)).status_code == 200  # per key
    clock.now += 0.5  # one token back
    assert client.post("/v1/track", json={**track, "messageId": "r5"}, headers=auth(APP_KEY)).status_code == 200
    too_big = {"batch": [{"type": "track", "userId": "u", "event": "E"} for _ in range(6)]}
    refused(client.post("/v1/batch", json=too_big, headers=auth(APP_KEY)), 429, "more than the rate limit's burst")
    assert stored(engine) == 7


class FailingCommitter(GroupCommitter):
    """A store that refuses every write."""

    def submit(self, entries: Any) -> Future[AppendResult]:
        future: Future[AppendResult] = Future()
        future.set_exception(RuntimeError("disk full"))
        return future


def test_a_store_that_cannot_take_the_write_gets_503(state: ServeState) -> None:
    state.committer = FailingCommitter(state.engine)
    with TestClient(build_app(state)) as client:
        refused(client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=auth(WEB_KEY)), 503, "retry")


# -- health, readiness, metrics ------------------------------------------------------------------


def test_health_and_readiness(client: TestClient, state: ServeState) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}
    state.engine = make_engine("sqlite:////nonexistent-folder/x/cdp.sqlite", create_folder=False)
    response = client.get("/ready")
    assert response.status_code == 503 and response.json()["status"] == "unavailable"


def test_metrics_count_accepted_rejected_duplicates_and_latency(client: TestClient) -> None:
    message = {"userId": "u1", "event": "E", "messageId": "x"}
    client.post("/v1/track", json=message, headers=auth(WEB_KEY))
    client.post("/v1/track", json=message, headers=auth(WEB_KEY))
    client.post("/v1/track", json=message, headers=auth("wk_nobody"))
    client.post("/v1/track", content=b"{", headers=auth(WEB_KEY))
    text = client.get("/metrics").text
    assert 'cdp_ingest_accepted_total{source="web"} 1' in text
    assert 'cdp_ingest_duplicates_total{source="web"} 1' in text
    assert 'cdp_ingest_rejected_total{source="-",reason="unknown_write_key"} 1' in text
    assert 'cdp_ingest_rejected_total{source="web",reason="bad_json"} 1' in text
    assert 'cdp_ingest_request_duration_seconds_count{endpoint="/v1/call"} 4' in text
    assert 'cdp_ingest_request_duration_seconds_bucket{endpoint="/v1/call",le="+Inf"} 4' in text
    assert "# TYPE cdp_ingest_request_duration_seconds histogram" in text
    assert WEB_KEY not in text and "wk_nobody" not in text


# -- webhooks ------------------------------------------------------------------------------------


def signed(body: bytes) -> dict[str, str]:
    return {"X-Toy-Hmac": base64.b64encode(hmac.new(HOOK_SECRET, body, hashlib.sha256).digest()).decode(), "X-Toy-Id": "d1"}


def test_a_webhook_handshake(client: TestClient) -> None:
    response = client.get("/webhooks/toys", params={"token": "verify-me", "challenge": "12345"})
    assert response.status_code == 200 and response.text == "12345"
    refused(client.get("/webhooks/toys", params={"token": "wrong", "challenge": "1"}), 401, "right verify token")
    refused(client.get("/webhooks/toys"), 401, "right verify token")


def test_a_get_to_a_webhook_without_a_handshake_gets_405(client: TestClient) -> None:
    response = refused(client.get("/webhooks/posts", params={"token": "verify-me", "challenge": "1"}), 405, "POST only")
    assert response.headers["Allow"] == "POST"


def test_a_webhook_that_cannot_verify_refuses_everything_with_401(client: TestClient, engine: Engine, caplog: Any) -> None:
    body = json.dumps({"id": 7}).encode()
    refused(client.post("/webhooks/locked", content=body, headers=signed(body)), 401, "cannot verify deliveries")
    refused(client.get("/webhooks/locked", params={"token": "verify-me", "challenge": "1"}), 401, "cannot verify")
    assert stored(engine) == 0
    assert "webhook locked refused: [connectors.locked] sets no secret" in caplog.text  # the operator is told why


def test_a_webhook_delivery_over_5_mb_gets_400(client: TestClient, engine: Engine) -> None:
    body = json.dumps({"id": 1, "pad": "x" * (5 * 2**20)}).encode()
    refused(client.post("/webhooks/toys", content=body, headers=signed(body)), 400, "at most 5120 KB")
    assert stored(engine) == 0


def test_a_webhook_the_store_cannot_take_gets_503(state: ServeState) -> None:
    state.committer = FailingCommitter(state.engine)
    body = json.dumps({"id": 7}).encode()
    with TestClient(build_app(state)) as client:
        refused(client.post("/webhooks/toys", content=body, headers=signed(body)), 503, "retry")


def test_a_signed_webhook_is_stored_once_and_a_bad_signature_gets_401(client: TestClient, engine: Engine) -> None:
    body = json.dumps({"id": 7}).encode()
    refused(client.post("/webhooks/toys", content=body, headers={**signed(body), "X-Toy-Hmac": "AAAA"}), 401, "signature")
    refused(client.post("/webhooks/toys", content=body + b" ", headers=signed(body)), 401, "signature")
    assert stored(engine) == 0
    assert client.post("/webhooks/toys", content=body, headers=signed(body)).json() == {
        "success": True, "accepted": 1, "duplicates": 0,
    }
    assert client.post("/webhooks/toys", content=body, headers=signed(body)).json()["duplicates"] == 1  # a retried delivery
    [row] = rows(engine)
    assert (row.source, row.message_id, row.kind, row.body) == ("toys", "d1", "toys/create", {"id": 7})
    bad = json.dumps({"no": "id"}).encode()
    refused(client.post("/webhooks/toys", content=bad, headers=signed(bad)), 400, "needs 'id'")


def test_a_connector_without_a_webhook_gets_404(client: TestClient) -> None:
    refused(client.post("/webhooks/web", content=b"{}"), 404, "no webhook for connector 'web'")
