"""Meta lead ads webhooks: the subscription handshake, X-Hub-Signature-256, what is logged, and each lead read later."""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from cdp_core.http import AuthError, HttpFactory
from cdp_core.ingest import IngestEntry
from cdp_core.plugins import load_plugins
from cdp_core.testing import make_context
from cdp_core.webhooks import EntryRejected, WebhookPayloadError
from meta_fake import (
    APP_SECRET,
    FORM_A,
    FORM_B,
    TOKEN,
    FakeLead,
    FakeLeads,
    event,
    lead,
    leads_url,
    raw,
    route,
    sign,
)

from cdp_meta_leads import MetaLeadsConfig, MetaLeadsSource, MetaLeadsWebhook, fetch_lead, leadgen_records
from cdp_meta_leads.mapping import lead_event, lead_profile

VERIFY_TOKEN = "my-verify-token-4242"
AT = datetime(2024, 5, 1, 10, 0, 1, tzinfo=UTC)
LEAD = lead(7, "2024-05-01T09:59:58+0000")
LEAD_ID = LEAD["id"]


def config(**options: Any) -> MetaLeadsConfig:
    return MetaLeadsConfig.model_validate(
        {"access_token": TOKEN, "form_ids": [FORM_A], "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, **options}
    )


def webhook(**options: Any) -> MetaLeadsWebhook:
    return MetaLeadsWebhook(config(**options), make_context(Path("."), "meta"))


def source(tmp_path: Path, http: HttpFactory, **options: Any) -> MetaLeadsSource:
    return MetaLeadsSource(config(**options), make_context(tmp_path, "meta", services={"http": http}))


def logged(lead_id: str = LEAD_ID, form_id: str = FORM_A) -> IngestEntry:
    body = raw(event((lead_id, form_id)))
    [entry] = webhook().entries({"X-Hub-Signature-256": sign(body)}, body, AT)
    return entry


def test_the_plugin_registers_its_webhook() -> None:
    assert load_plugins().webhooks["meta_leads"] is MetaLeadsWebhook


# -- the subscription handshake ---------------------------------------------------------------------


def test_the_handshake_answers_the_challenge() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    assert webhook().handshake(query) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong-token", "hub.challenge": "1158201444"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN[:-1], "hub.challenge": "1158201444"},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
        {},
    ],
)
def test_a_bad_handshake_is_refused(query: dict[str, str]) -> None:
    assert webhook().handshake(query) is None


def test_without_a_verify_token_no_handshake_passes() -> None:
    hook = webhook(verify_token=None)
    assert hook.handshake({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}) is None
    assert hook.unavailable() == "[connectors.meta] sets no verify_token"
    assert webhook(app_secret=None, verify_token=None).unavailable() == (
        "[connectors.meta] sets no app_secret and no verify_token"
    )
    assert webhook().unavailable() is None


def test_the_verify_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    webhook().handshake({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert compared == [(b"guess", VERIFY_TOKEN.encode())]


# -- the signature ----------------------------------------------------------------------------------


def test_a_good_signature_verifies() -> None:
    body = raw(event((LEAD_ID, FORM_A)))
    assert webhook().verify({"X-Hub-Signature-256": sign(body)}, body)
    assert webhook().verify({"x-hub-signature-256": sign(body)}, body)


@pytest.mark.parametrize(
    "signature",
    [
        sign(raw(event((LEAD_ID, FORM_A))), "another-app-secret"),
        sign(raw(event((LEAD_ID, FORM_A)))).removeprefix("sha256="),  # no algorithm prefix
        "sha1=" + sign(raw(event((LEAD_ID, FORM_A)))).removeprefix("sha256="),  # X-Hub-Signature's algorithm
        "sha256=",
        "",
    ],
)
def test_a_bad_signature_does_not_verify(signature: str) -> None:
    body = raw(event((LEAD_ID, FORM_A)))
    assert not webhook().verify({"X-Hub-Signature-256": signature}, body)


def test_a_missing_signature_a_tampered_body_or_no_app_secret_do_not_verify() -> None:
    body = raw(event((LEAD_ID, FORM_A)))
    assert not webhook().verify({}, body)
    assert not webhook().verify({"X-Hub-Signature": sign(body)}, body)  # the SHA-1 header's name
    assert not webhook().verify({"X-Hub-Signature-256": sign(body)}, raw(event(("99999", FORM_A))))
    assert not webhook(app_secret=None).verify({"X-Hub-Signature-256": sign(body)}, body)


def test_the_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    body = raw(event((LEAD_ID, FORM_A)))
    assert webhook().verify({"X-Hub-Signature-256": sign(body)}, body)
    digest = sign(body).removeprefix("sha256=").encode()
    assert compared == [(digest, digest)]


# -- what is logged ---------------------------------------------------------------------------------


def test_each_leadgen_change_is_logged_under_its_leadgen_id() -> None:
    body = raw(event((LEAD_ID, FORM_A), ("b00001", FORM_B)))
    entries = webhook().entries({}, body, AT)
    assert [(e.source, e.message_id, e.kind, e.received_at) for e in entries] == [
        ("meta", LEAD_ID, "leadgen", AT),
        ("meta", "b00001", "leadgen", AT),
    ]
    assert entries[0].body == event((LEAD_ID, FORM_A))["entry"][0]["changes"][0]["value"]


def test_other_fields_and_objects_are_not_kept() -> None:
    feed = {"object": "page", "entry": [{"id": "1", "time": 1, "changes": [{"field": "feed", "value": {"item": "x"}}]}]}
    assert webhook().entries({}, raw(feed), AT) == []
    assert webhook().entries({}, raw({"object": "instagram", "entry": []}), AT) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"object": "page", "entry": {}}, "'entry' is not a list"),
        ({"object": "page", "entry": [{"id": "1"}]}, "entry[0].changes is not a list"),
        (
            {"object": "page", "entry": [{"changes": [{"field": "leadgen", "value": {"form_id": FORM_A}}]}]},
            "entry[0].changes[0].value has no leadgen_id",
        ),
    ],
)
def test_a_body_of_another_shape_is_a_payload_error(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(WebhookPayloadError, match=rf"meta leadgen webhook: {message}".replace("[", r"\[")) as caught:
        webhook().entries({}, raw(payload), AT)
    assert APP_SECRET not in str(caught.value) and VERIFY_TOKEN not in str(caught.value)


# -- each logged lead read with GET /{leadgen_id}: the pull streams' records ---------------------------


def test_a_logged_lead_gives_the_records_the_pull_streams_make(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    cdp_respx.get(leads_url(FORM_A)).mock(side_effect=FakeLeads(FORM_A, [LEAD]))
    fake = FakeLead(LEAD)
    route(cdp_respx, fake)
    src = source(tmp_path, cdp_http)
    for pull, live in (("leads", "webhook_leads"), ("submissions", "webhook_submissions")):
        pulled = [r for page in src.stream(pull).read(None) for r in page.records]
        pushed = src.stream(live).records(logged())
        assert pushed == pulled and [(r.stream, r.key) for r in pushed] == [(f"meta.{pull}", LEAD_ID)]
    assert dict(fake.requests[0].url.params) == {"fields": "id,created_time,field_data,ad_id,campaign_id"}
    assert fake.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert src.stream("webhook_leads").traits == src.stream("leads").traits


def test_the_lead_is_read_with_the_extra_fields_too(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    fake = FakeLead(LEAD)
    route(cdp_respx, fake)
    src = source(tmp_path, cdp_http, extra_fields=["ad_name", "platform"])
    [record] = leadgen_records(logged(), src.graph, src.config, lead_profile, "leads")
    assert record.data["ad_name"] == "Spring campaign ad" and record.data["platform"] == "fb"
    assert record.identifiers == {"meta_lead_id": LEAD_ID, "email": "lead7@example.com", "phone": "+491710000007"}


def test_a_5xx_is_retried_then_the_lead_is_read(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeLead(LEAD)
    answers = iter([httpx.Response(503, json={"error": {"message": "Service unavailable", "code": 2}})])
    seen: list[httpx.Request] = []

    def flaky(request: httpx.Request, lead_id: str) -> httpx.Response:
        seen.append(request)
        return next(answers, None) or fake(request, lead_id)

    route(cdp_respx, flaky)
    src = source(tmp_path, cdp_http)
    [record] = leadgen_records(logged(), src.graph, src.config, lead_event, "submissions")
    assert len(seen) == 2 and record.key == LEAD_ID and record.data["event"] == "lead_form_submitted"


def test_a_lead_meta_no_longer_has_is_rejected_with_metas_reason(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    route(cdp_respx, FakeLead())
    src = source(tmp_path, cdp_http)
    with pytest.raises(
        EntryRejected, match=rf"meta leadgen {LEAD_ID}: .*code 100, subcode 33.*does not exist"
    ) as caught:
        src.stream("webhook_leads").records(logged())
    assert TOKEN not in str(caught.value) and APP_SECRET not in str(caught.value)


def test_a_token_error_stops_the_read(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    route(cdp_respx, FakeLead(LEAD))
    src = source(tmp_path, cdp_http, access_token="EAAexpired")
    with pytest.raises(AuthError) as caught:
        fetch_lead(src.graph, LEAD_ID, src.config.fields)
    assert "EAAexpired" not in str(caught.value)


def test_a_lead_of_another_form_is_skipped_without_a_call(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "cdp.meta_leads")
    lead_route = route(cdp_respx, FakeLead(LEAD))
    src = source(tmp_path, cdp_http)
    assert src.stream("webhook_leads").records(logged(form_id=FORM_B)) == []
    assert not lead_route.called and f"is of form {FORM_B}, not in form_ids; skipped" in caplog.text


def test_a_lead_of_the_wrong_shape_is_rejected(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    route(cdp_respx, FakeLead(LEAD | {"created_time": "yesterday"}))
    src = source(tmp_path, cdp_http)
    with pytest.raises(
        EntryRejected, match=rf"meta leadgen {LEAD_ID}: GET /{LEAD_ID}: does not match Lead: created_time"
    ):
        src.stream("webhook_leads").records(logged())
