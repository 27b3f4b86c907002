"""The kit's webhook conformance suite (WebhookConformance) on both Meta webhook streams, handshake included, on
SQLite and PostgreSQL.

The same deliveries go to both streams, in Meta's documented shapes (meta_fake.event): the suite signs them as Meta
does (``X-Hub-Signature-256: sha256=`` and the hex HMAC-SHA256 of the raw body, keyed with ``app_secret``). Meta
sends no delivery id: a lead is logged under its ``leadgen_id``, which Meta's retries repeat. Each read fetches the
logged leads with ``GET /{leadgen_id}`` from the fake Graph API (respx), which knows every lead delivered but the
one Meta no longer has.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import respx
from cdp_core.testing.webhook_conformance import Delivery, Handshake, HmacSignature, WebhookConformance
from meta_fake import APP_SECRET, FORM_A, FORM_B, TOKEN, FakeLead, event, lead, raw, route

import cdp_meta_leads
from cdp_meta_leads.webhooks import SIGNATURE_HEADER

VERIFY_TOKEN = "my-verify-token-4242"
LEADS = [lead(n, f"2024-05-01T09:59:{50 + n}+0000") for n in range(1, 5)]
L1, L2, L3, L4 = (item["id"] for item in LEADS)
OTHER_FORM = lead(8, "2024-05-01T09:59:59+0000", form=FORM_B)
GONE = "700042"  # a lead Meta no longer has: GET /700042 answers code 100
MISSHAPEN = lead(9, "yesterday")  # Meta answers a created_time that is no time

FEED = {  # a Page's feed change: another field of the same object, acknowledged and not kept
    "object": "page",
    "entry": [{"id": "444444444444", "time": 1714557599, "changes": [{"field": "feed", "value": {
        "item": "status", "post_id": "444444444444_1234567890", "verb": "add", "published": 1,
        "created_time": 1714557599, "message": "Example post content.",
        "from": {"name": "Test Page", "id": "444444444444"}}}]}],
}  # fmt: skip
USER = {  # another object (a User's photos), acknowledged and not kept
    "object": "user",
    "entry": [{"time": 1520383571, "id": "10210299214172187", "uid": "10210299214172187",
               "changes": [{"field": "photos", "value": {"verb": "update", "object_id": "10211885744794461"}}]}],
}  # fmt: skip


def two_pages() -> dict[str, Any]:
    """One POST with an entry per Page (Meta batches changes): lead L4 on one, the lead Meta lost on another."""
    first, second = event((L4, FORM_A)), event((GONE, FORM_A))
    second["entry"][0]["id"] = second["entry"][0]["changes"][0]["value"]["page_id"] = "555555555555"
    return {"object": "page", "entry": first["entry"] + second["entry"]}


# (payload, the keys both streams read of it, one logged lead quarantined)
SENT: list[tuple[dict[str, Any], tuple[str, ...], bool]] = [
    (event((L1, FORM_A)), (L1,), False),
    (FEED, (), False),
    (event((OTHER_FORM["id"], FORM_B)), (), False),  # logged, but of a form not in form_ids: skipped
    (event((L2, FORM_A), (L3, FORM_A)), (L2, L3), False),  # two changes in one entry
    (USER, (), False),
    (two_pages(), (L4,), True),
    (event((MISSHAPEN["id"], FORM_A)), (), True),
]


class _MetaWebhook(WebhookConformance):
    plugin = cdp_meta_leads
    type_name = "meta_leads"
    config: ClassVar[dict[str, Any]] = {
        "access_token": TOKEN,
        "form_ids": [FORM_A],
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
    }
    signature = HmacSignature(header=SIGNATURE_HEADER, secret_option="app_secret", encoding="hex", prefix="sha256=")
    handshake = Handshake(
        query={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
        answer="1158201444",
        token_param="hub.verify_token",
        refused=(
            {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
            {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},  # nothing to answer
        ),
    )

    @pytest.fixture
    def webhook_store_url(self, store_url: str) -> str:
        return store_url  # the ingest log's reader differs on PostgreSQL: run every case on both

    @pytest.fixture(autouse=True)
    def graph(self, cdp_respx: respx.Router) -> FakeLead:
        """``GET /{leadgen_id}`` of every lead delivered, but the one Meta no longer has; any other call fails."""
        fake = FakeLead(*LEADS, OTHER_FORM, MISSHAPEN)
        route(cdp_respx, fake)
        return fake

    def deliveries(self) -> list[Delivery]:
        return [
            Delivery(raw(payload), {"Content-Type": "application/json"}, keys=keys, rejected=rejected)
            for payload, keys, rejected in SENT
        ]


class TestWebhookLeads(_MetaWebhook):
    stream = "webhook_leads"


class TestWebhookSubmissions(_MetaWebhook):
    stream = "webhook_submissions"
