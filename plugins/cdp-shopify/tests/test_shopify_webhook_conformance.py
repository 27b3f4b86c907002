"""The kit's webhook conformance suite (WebhookConformance) on each Shopify webhook stream, on both databases.

The same deliveries go to every stream, in Shopify's documented shapes (shopify_webhook_samples.py): the suite
signs them as Shopify does (base64 HMAC-SHA256 of the raw body in ``X-Shopify-Hmac-Sha256``, keyed with
``webhook_secret``); each stream's class says which records it reads of each.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from cdp_core.testing.webhook_conformance import Delivery, HmacSignature, WebhookConformance
from shopify_fake import SHOP, TOKEN
from shopify_webhook_samples import CUSTOMER, CUSTOMER_DELETED, ORDER, ORDER_DELETED, SECRET, headers, raw

import cdp_shopify
from cdp_shopify.webhooks import SIGNATURE_HEADER

CUSTOMER_ID, ORDER_ID = str(CUSTOMER["id"]), str(ORDER["id"])
OTHER = CUSTOMER | {
    "id": 706405506930370085,
    "email": "ana@example.com",
    "phone": "+16135550111",
    "admin_graphql_api_id": "gid://shopify/Customer/706405506930370085",
    "sms_marketing_consent": {
        "state": "subscribed",
        "opt_in_level": "single_opt_in",
        "consent_updated_at": "2022-01-02T10:00:00-05:00",
        "consent_collected_from": "SHOPIFY",
    },
}
OTHER_ID = str(OTHER["id"])

# (topic, payload, what each webhook stream reads of it: {stream: (live keys, deleted keys, rejected)})
SENT: list[tuple[str, dict[str, Any], dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]]]] = [
    ("customers/create", CUSTOMER, {"webhook_customers": ((CUSTOMER_ID,), (), False),
                                    "webhook_consents": ((f"{CUSTOMER_ID}:email",), (), False)}),
    ("orders/create", ORDER, {"webhook_orders": ((ORDER_ID,), (), False)}),
    ("customers/update", OTHER, {"webhook_customers": ((OTHER_ID,), (), False),
                                 "webhook_consents": ((f"{OTHER_ID}:email", f"{OTHER_ID}:sms"), (), False)}),
    ("products/update", {"id": 632910392, "title": "IPod Nano - 8GB"}, {}),  # acknowledged, not kept
    ("orders/paid", ORDER | {"financial_status": "paid", "updated_at": "2022-01-01T10:00:00-05:00"},
     {"webhook_orders": ((ORDER_ID,), (), False)}),
    ("customers/update", OTHER | {"email_marketing_consent": {"state": "maybe"}},  # a state Shopify may add
     {"webhook_customers": ((OTHER_ID,), (), False), "webhook_consents": ((), (), True)}),
    ("customers/update", CUSTOMER | {"updated_at": "yesterday"},  # not the documented shape
     {"webhook_customers": ((), (), True), "webhook_consents": ((), (), True)}),
    ("customers/delete", CUSTOMER_DELETED, {"webhook_customers": ((), (CUSTOMER_ID,), False),  # every purpose's
                                            "webhook_consents": ((), (f"{CUSTOMER_ID}:email", f"{CUSTOMER_ID}:sms"),
                                                                 False)}),
    ("orders/delete", ORDER_DELETED, {"webhook_orders": ((), (ORDER_ID,), False)}),
]  # fmt: skip


class _ShopifyWebhook(WebhookConformance):
    plugin = cdp_shopify
    type_name = "shopify"
    config: ClassVar[dict[str, Any]] = {"shop": SHOP, "access_token": TOKEN, "webhook_secret": SECRET}
    signature = HmacSignature(header=SIGNATURE_HEADER, secret_option="webhook_secret", encoding="base64")

    @pytest.fixture
    def webhook_store_url(self, store_url: str) -> str:
        return store_url  # the ingest log's reader differs on PostgreSQL: run every case on both

    def deliveries(self) -> list[Delivery]:
        sent = []
        for number, (topic, payload, reads) in enumerate(SENT):
            body = raw(payload)
            keys, deleted, rejected = reads.get(self.stream, ((), (), False))
            unsigned = {k: v for k, v in headers(topic, body, webhook_id=f"delivery-{number}").items()}
            sent.append(Delivery(body, unsigned, keys=keys, deleted=deleted, rejected=rejected))
        return sent


class TestWebhookCustomers(_ShopifyWebhook):
    stream = "webhook_customers"


class TestWebhookConsents(_ShopifyWebhook):
    stream = "webhook_consents"


class TestWebhookOrders(_ShopifyWebhook):
    stream = "webhook_orders"
