"""Shopify's webhook deliveries as Shopify documents them (the admin's "Send test notification" payloads, API 2024-10).

The body is the object in the Admin REST API's shape; the headers name the topic,
the shop, the delivery (``X-Shopify-Webhook-Id``, the same on every retry) and sign
the raw body (``X-Shopify-Hmac-SHA256``: base64 HMAC-SHA256 with the app's secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from shopify_fake import SHOP

SECRET = "shpss_webhook_secret_0123456789abcdef"

CUSTOMER: dict[str, Any] = {
    "id": 706405506930370084,
    "email": "bob@biller.com",
    "created_at": "2021-12-31T19:00:00-05:00",
    "updated_at": "2021-12-31T19:00:00-05:00",
    "first_name": "Bob",
    "last_name": "Biller",
    "orders_count": 0,
    "state": "disabled",
    "total_spent": "0.00",
    "last_order_id": None,
    "note": "This customer loves ice cream",
    "verified_email": True,
    "multipass_identifier": None,
    "tax_exempt": False,
    "tags": "",
    "last_order_name": None,
    "currency": "USD",
    "phone": None,
    "addresses": [],
    "tax_exemptions": [],
    "email_marketing_consent": {
        "state": "subscribed",
        "opt_in_level": "confirmed_opt_in",
        "consent_updated_at": "2021-12-31T19:00:00-05:00",
    },
    "sms_marketing_consent": None,
    "admin_graphql_api_id": "gid://shopify/Customer/706405506930370084",
}

CUSTOMER_DELETED: dict[str, Any] = {
    "id": 706405506930370084,
    "phone": None,
    "addresses": [],
    "tax_exemptions": [],
    "email_marketing_consent": None,
    "sms_marketing_consent": None,
    "admin_graphql_api_id": "gid://shopify/Customer/706405506930370084",
}

ORDER: dict[str, Any] = {
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "app_id": None,
    "browser_ip": None,
    "buyer_accepts_marketing": True,
    "cancel_reason": "customer",
    "cancelled_at": "2021-12-31T19:00:00-05:00",
    "closed_at": None,
    "confirmed": False,
    "contact_email": "jon@example.com",
    "created_at": "2021-12-31T19:00:00-05:00",
    "currency": "USD",
    "current_total_price": "398.00",
    "email": "jon@example.com",
    "financial_status": "voided",
    "fulfillment_status": "pending",
    "name": "#9999",
    "note": None,
    "order_number": 1234,
    "phone": None,
    "processed_at": "2021-12-31T19:00:00-05:00",
    "source_name": "web",
    "subtotal_price": "393.00",
    "tags": "tag1, tag2",
    "total_discounts": "0.00",
    "total_price": "403.00",
    "total_tax": "0.00",
    "updated_at": "2021-12-31T19:00:00-05:00",
    "customer": {
        "id": 115310627314723954,
        "email": "john@example.com",
        "created_at": None,
        "updated_at": None,
        "first_name": "John",
        "last_name": "Smith",
        "state": "disabled",
        "phone": None,
        "currency": "USD",
    },
    "line_items": [
        {
            "id": 866550311766439020,
            "product_id": 632910392,
            "variant_id": 808950810,
            "sku": "IPOD2008PINK",
            "title": "IPod Nano - 8GB",
            "variant_title": None,
            "quantity": 1,
            "price": "199.00",
            "vendor": None,
        },
        {
            "id": 141249953214522974,
            "product_id": 632910392,
            "variant_id": 808950810,
            "sku": "IPOD2008PINK",
            "title": "IPod Nano - 8GB",
            "variant_title": None,
            "quantity": 1,
            "price": "199.00",
            "vendor": None,
        },
    ],
}

ORDER_DELETED: dict[str, Any] = {"id": 820982911946154508}


def raw(payload: dict[str, Any]) -> bytes:
    """The body as Shopify sends it (its own bytes: what the signature covers)."""
    return json.dumps(payload, separators=(",", ":")).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(topic: str, body: bytes, *, webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": "2024-10",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Triggered-At": "2024-05-01T10:00:00.000Z",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
    }
