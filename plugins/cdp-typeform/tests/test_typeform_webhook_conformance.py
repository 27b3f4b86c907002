"""The kit's webhook conformance suite (WebhookConformance) on stream ``webhook_responses``, on SQLite and PostgreSQL.

The deliveries are ``form_response`` events in Typeform's documented shape (fake_typeform.event): the suite signs
them as Typeform does (``Typeform-Signature: sha256=`` and the base64 HMAC-SHA256 of the raw body, keyed with
``webhook_secret``). A response is logged under its ``token``, so Typeform's retry of an event, and the same
response sent again under a new ``event_id``, are dropped; the stream quarantines a response of another form than
``form_id`` and one without a usable score.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from cdp_core.testing.webhook_conformance import Delivery, HmacSignature, WebhookConformance
from fake_typeform import FORM_ID, NPS_FIELD, SECRET, TOKEN, event, raw

import cdp_typeform
from cdp_typeform.webhooks import SIGNATURE_HEADER


def sent(token: str, event_id: str, **changes: Any) -> dict[str, Any]:
    """A form_response event of response ``token``: its own event id, the documented payload otherwise."""
    return event(token=token, **changes) | {"event_id": event_id}


FIRST = sent("a3a12ec67a1365927098a606107fac15", "01HW2Q0Y7TRNV0K9S6FZ8P3B2C")
PARTIAL = {  # a partial response (a webhook with event_types {"form_response_partial": true}): acknowledged, not kept
    "event_id": "01HW2Q1A5KX8M2D4R7T9V0B3NE",
    "event_type": "form_response_partial",
    "form_response": {"form_id": FORM_ID, "token": "c0ffee0c0ffee0c0ffee0c0ffee0c0ff", "landed_at": "2024-05-01T10:00:02Z",
                      "answers": [{"type": "number", "number": 6, "field": NPS_FIELD}]},
}  # fmt: skip

# (payload, the keys webhook_responses reads of it, the logged response quarantined)
SENT: list[tuple[dict[str, Any], tuple[str, ...], bool]] = [
    (FIRST, ("a3a12ec67a1365927098a606107fac15",), False),
    (sent("b7d2e9f10c4a4b8e9a1f2c3d4e5f6a7b", "01HW2Q0Z3GQ5J8WQ1S2E4N6R8T", score=3), ("b7d2e9f10c4a4b8e9a1f2c3d4e5f6a7b",), False),
    (FIRST, (), False),  # Typeform's retry of the first event: byte for byte the same, dropped
    (sent("0f1e2d3c4b5a69788796a5b4c3d2e1f0", "01HW2Q0ZA4M7P0S3V6Y9B2E5H8", form_id="OtherForm"), (), True),
    (PARTIAL, (), False),
    (sent("9a8b7c6d5e4f30211203f4e5d6c7b8a9", "01HW2Q0ZK1N4Q7T0W3Z6C9F2J5", score=None), (), True),  # score skipped
    (FIRST | {"event_id": "01HW2Q1B8E2H5K8N1Q4T7W0Z3C"}, (), False),  # the first response sent again: dropped
    (sent("5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", "01HW2Q1C2D5G8J1M4P7S0V3Y6B", score=11), (), True),  # out of 0-10
    (sent("1234abcd5678ef901234abcd5678ef90", "01HW2Q1D6F9J2M5P8S1V4Y7B0E", score=10), ("1234abcd5678ef901234abcd5678ef90",), False),
]  # fmt: skip


class TestWebhookResponses(WebhookConformance):
    plugin = cdp_typeform
    type_name = "typeform"
    stream = "webhook_responses"
    config: ClassVar[dict[str, Any]] = {
        "token": TOKEN,
        "form_id": FORM_ID,
        "score_field": "nps",
        "comment_field": "why",
        "channel_field": "channel",
        "survey": "NPS 2024",
        "webhook_secret": SECRET,
    }
    signature = HmacSignature(header=SIGNATURE_HEADER, secret_option="webhook_secret", prefix="sha256=")
    # JSON, but a form_response it cannot log: no token to log it under
    unreadable_body = raw(
        {
            "event_id": "01HW2Q1E0H3K6N9Q2T5W8Z1C4F",
            "event_type": "form_response",
            "form_response": {"form_id": FORM_ID, "submitted_at": "2024-05-01T10:00:03Z"},
        }
    )

    @pytest.fixture
    def webhook_store_url(self, store_url: str) -> str:
        return store_url  # the ingest log's reader differs on PostgreSQL: run every case on both

    def deliveries(self) -> list[Delivery]:
        return [
            Delivery(raw(payload), {"Content-Type": "application/json"}, keys=keys, rejected=rejected)
            for payload, keys, rejected in SENT
        ]  # fmt: skip
