"""Typeform webhooks: Typeform-Signature, what is logged, and the record the webhook stream makes of it."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import respx
from cdp_core.http import HttpFactory
from cdp_core.ingest import IngestEntry
from cdp_core.plugins import load_plugins
from cdp_core.testing import make_context
from cdp_core.webhooks import EntryRejected, WebhookPayloadError
from fake_typeform import FORM_ID, SECRET, TOKEN, FakeTypeform, event, raw, response, sign

import cdp_typeform
from cdp_typeform import TypeformConfig, TypeformSource, TypeformWebhook, response_records

AT = datetime(2024, 5, 1, 10, 0, 1, tzinfo=UTC)
CONFIG = {"token": TOKEN, "form_id": FORM_ID, "score_field": "nps", "comment_field": "why", "channel_field": "channel",
          "survey": "NPS 2024", "webhook_secret": SECRET}  # fmt: skip


def config(**options: Any) -> TypeformConfig:
    return TypeformConfig.model_validate({**CONFIG, **options})


def webhook(**options: Any) -> TypeformWebhook:
    return TypeformWebhook(config(**options), make_context(Path("."), "survey"))


def logged(payload: dict[str, Any]) -> IngestEntry:
    body = raw(payload)
    [entry] = webhook().entries({"Typeform-Signature": sign(body)}, body, AT)
    return entry


def test_the_plugin_registers_its_webhook() -> None:
    plugins = load_plugins()
    assert plugins.webhooks["typeform"] is TypeformWebhook
    assert plugins.info["typeform"].registered["webhooks"] == ["typeform"]


# -- the signature ----------------------------------------------------------------------------------


def test_a_good_signature_verifies() -> None:
    body = raw(event())
    assert webhook().verify({"Typeform-Signature": sign(body)}, body)
    assert webhook().verify({"typeform-signature": sign(body)}, body)


@pytest.mark.parametrize(
    "signature",
    [
        sign(raw(event()), "another-secret"),
        sign(raw(event())).removeprefix("sha256="),  # no algorithm prefix
        "sha1=" + sign(raw(event())).removeprefix("sha256="),  # another algorithm
        "sha256=" + hmac.new(SECRET.encode(), raw(event()), hashlib.sha256).hexdigest(),  # hex, not base64
        "sha256=",
    ],
)
def test_a_bad_signature_does_not_verify(signature: str) -> None:
    body = raw(event())
    assert not webhook().verify({"Typeform-Signature": signature}, body)


def test_a_missing_signature_a_tampered_body_or_no_secret_do_not_verify() -> None:
    body = raw(event())
    assert not webhook().verify({}, body)
    assert not webhook().verify({"Typeform-Signature": sign(body)}, raw(event(score=10)))
    hook = webhook(webhook_secret=None)
    assert not hook.verify({"Typeform-Signature": sign(body)}, body)
    assert hook.unavailable() == "[connectors.survey] sets no webhook_secret" and webhook().unavailable() is None


def test_the_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    body = raw(event())
    assert webhook().verify({"Typeform-Signature": sign(body)}, body)
    digest = sign(body).removeprefix("sha256=").encode()
    assert compared == [(digest, digest)]


# -- what is logged ---------------------------------------------------------------------------------


def test_a_response_is_logged_under_its_token() -> None:
    assert logged(event()) == IngestEntry("survey", "a3a12ec67a1365927098a606107fac15", "form_response", event(), AT)


def test_the_same_response_sent_again_under_another_event_id_has_the_same_message_id() -> None:
    again = event() | {"event_id": "01HW2Q0Y7TRNV0K9S6FZ8P3XXX"}
    assert logged(again).message_id == logged(event()).message_id


def test_other_event_types_are_not_kept() -> None:
    body = raw({"event_id": "x", "event_type": "form_response_partial", "form_response": {"token": "t"}})
    assert webhook().entries({}, body, AT) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "typeform webhook: the body is not JSON"),
        (raw({"event_type": "form_response", "form_response": {}}), "typeform webhook: form_response.token is missing"),
        (raw({"event_type": "form_response"}), "typeform webhook: form_response.token is missing"),
    ],
)
def test_a_body_it_cannot_read_is_a_payload_error(body: bytes, message: str) -> None:
    with pytest.raises(WebhookPayloadError, match=message) as caught:
        webhook().entries({}, body, AT)
    assert SECRET not in str(caught.value)


# -- the record: what the responses stream makes of the same response --------------------------------


def test_a_response_gives_the_record_the_responses_stream_makes(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    entry = logged(event())
    # the same response as the Responses API lists it
    FakeTypeform([event()["form_response"]]).install(cdp_respx)
    source = TypeformSource(config(), make_context(tmp_path, "survey", services={"http": cdp_http}))
    pulled = [r for page in source.stream("responses").read(None) for r in page.records]
    [record] = response_records(entry, source.config)
    assert [record] == pulled == source.stream("webhook_responses").records(entry)
    assert (record.stream, record.key, record.kind) == (
        "survey.responses",
        "a3a12ec67a1365927098a606107fac15",
        "nps_response",
    )
    assert record.data == {
        "score": 9,
        "comment": "Great coffee",
        "survey": "NPS 2024",
        "channel": "email",
        "form_id": FORM_ID,
    }
    assert record.identifiers == {"email": "anna@example.com"}
    assert record.occurred_at == datetime(2024, 5, 1, 9, 59, 58, tzinfo=UTC)


def test_the_records_match_a_pulled_response_of_the_fakes_shape_too() -> None:
    item = response("tok9", "2024-05-02T10:00:00Z", 3, "Too slow", email="ben@example.com", channel="web")
    entry = logged({"event_id": "e", "event_type": "form_response", "form_response": item | {"form_id": FORM_ID}})
    from cdp_typeform.api import ResponseItem

    expected, _ = cdp_typeform.response_record(ResponseItem.model_validate(item), config(), "survey.responses")
    assert response_records(entry, config()) == [expected]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (event(score=None), "typeform: response a3a12ec67a1365927098a606107fac15: the score field 'nps' answered None"),
        (event(score=11), "answered 11, not a whole number from 0 to 10"),
        (event(form_id="OtherForm"), "a response of form 'OtherForm'; connector 'survey' reads 'u6nXL7'"),
    ],
)
def test_a_response_that_gives_no_record_is_rejected_with_the_reason(payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(EntryRejected) as caught:
        response_records(logged(payload), config())
    assert reason in str(caught.value)


def test_a_response_of_the_wrong_shape_is_rejected_naming_the_field() -> None:
    payload = event()
    payload["form_response"]["submitted_at"] = "anna@example.com"
    with pytest.raises(EntryRejected, match="does not match ResponseItem: submitted_at") as caught:
        response_records(logged(payload), config())
    assert "anna@example.com" not in str(caught.value)
