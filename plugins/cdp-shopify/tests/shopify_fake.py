"""A fake Shopify Admin REST API for respx, in the shapes Shopify documents.

- ``GET /admin/api/2024-10/{customers,orders}.json?limit=N&updated_at_min=ISO[&status=any]``;
  ``updated_at_min`` is inclusive; results in id order (Shopify's default).
- Paging by the ``Link`` header: ``<...?limit=N&page_info=P>; rel="next"`` (and
  ``rel="previous"`` after page one). ``page_info`` encodes the query: a request
  with ``page_info`` and any parameter other than ``limit``/``fields`` is refused
  with 400, as Shopify does.
- ``X-Shopify-Shop-Api-Call-Limit: used/40`` on every answer.
- 401 with Shopify's error body for a wrong ``X-Shopify-Access-Token``.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import httpx

SHOP = "test-shop.myshopify.com"
VERSION = "2024-10"
BASE = f"https://{SHOP}/admin/api/{VERSION}"
TOKEN = "shpat_test_token_0123456789"
CALL_LIMIT = "X-Shopify-Shop-Api-Call-Limit"


def _encode(query: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(query, sort_keys=True).encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


class FakeShopify:
    """The list endpoint of one resource (``customers`` or ``orders``) over a mutable list of dicts."""

    def __init__(self, resource: str, items: list[dict[str, Any]], *, call_limits: list[str] | None = None) -> None:
        self.resource = resource
        self.items = items
        self.call_limits = list(call_limits or [])
        self.requests: list[httpx.Request] = []
        self.date: str | None = None
        """A ``Date`` header to send (server time), or none."""
        self.before_answer: Any = None
        """Called with the request number before each answer (to change the data mid-read)."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.before_answer is not None:
            self.before_answer(len(self.requests))
        if request.headers.get("X-Shopify-Access-Token") != TOKEN:
            return httpx.Response(
                401, json={"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
            )
        params = dict(request.url.params)
        limit = int(params.get("limit", 50))
        if limit > 250:
            return httpx.Response(400, json={"errors": {"limit": "must be at most 250"}})
        if "page_info" in params:
            others = set(params) - {"page_info", "limit", "fields"}
            if others:
                return httpx.Response(
                    400, json={"errors": {"page_info": f"cannot be combined with {', '.join(sorted(others))}"}}
                )
            query = _decode(params["page_info"])
        else:
            query = {k: v for k, v in params.items() if k not in ("limit", "fields")}
        since = query.get("updated_at_min")
        rows = [i for i in self.items if since is None or _at(i["updated_at"]) >= _at(since)]
        rows = sorted((r for r in rows if r["id"] > query.get("last_id", 0)), key=lambda r: r["id"])
        page = rows[:limit]
        links = []
        if "page_info" in params:
            first_id = page[0]["id"] if page else query.get("last_id", 0)
            prev = {k: v for k, v in query.items() if k != "last_id"} | {"before_id": first_id}
            links.append(f'<{BASE}/{self.resource}.json?limit={limit}&page_info={_encode(prev)}>; rel="previous"')
        if len(rows) > limit:
            nxt = {k: v for k, v in query.items() if k != "last_id"} | {"last_id": page[-1]["id"]}
            links.append(f'<{BASE}/{self.resource}.json?limit={limit}&page_info={_encode(nxt)}>; rel="next"')
        headers = {CALL_LIMIT: self.call_limits.pop(0) if self.call_limits else "1/40"}
        if links:
            headers["Link"] = ", ".join(links)
        if self.date:
            headers["Date"] = self.date
        return httpx.Response(200, json={self.resource: page}, headers=headers)

    def query_of(self, n: int) -> dict[str, str]:
        """The query parameters of request ``n`` (0-based)."""
        return dict(self.requests[n].url.params)


def customer(n: int, updated_at: str, **overrides: Any) -> dict[str, Any]:
    """A customer as ``customers.json`` lists it (API 2024-10)."""
    base: dict[str, Any] = {
        "id": 1000 + n,
        "email": f"person{n}@example.com",
        "created_at": "2024-01-01T09:00:00-05:00",
        "updated_at": updated_at,
        "first_name": f"First{n}",
        "last_name": f"Last{n}",
        "orders_count": n,
        "state": "enabled",
        "total_spent": f"{n * 10}.50",
        "last_order_id": None,
        "note": None,
        "verified_email": True,
        "multipass_identifier": None,
        "tax_exempt": False,
        "tags": "vip, newsletter",
        "last_order_name": None,
        "currency": "EUR",
        "phone": f"+4915112345{n:03d}",
        "addresses": [
            {
                "id": 2000 + n,
                "customer_id": 1000 + n,
                "first_name": f"First{n}",
                "last_name": f"Last{n}",
                "city": "Berlin",
                "province": None,
                "country": "Germany",
                "zip": "10115",
                "country_code": "DE",
                "country_name": "Germany",
                "default": True,
            }
        ],
        "tax_exemptions": [],
        "email_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "confirmed_opt_in",
            "consent_updated_at": "2024-02-01T10:00:00-05:00",
        },
        "sms_marketing_consent": {
            "state": "not_subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": None,
            "consent_collected_from": "OTHER",
        },
        "admin_graphql_api_id": f"gid://shopify/Customer/{1000 + n}",
    }
    base["default_address"] = base["addresses"][0]
    return base | overrides


def order(n: int, updated_at: str, *, customer_id: int | None = 1001, **overrides: Any) -> dict[str, Any]:
    """An order as ``orders.json`` lists it; ``customer_id=None`` is a guest checkout."""
    base: dict[str, Any] = {
        "id": 5000 + n,
        "admin_graphql_api_id": f"gid://shopify/Order/{5000 + n}",
        "name": f"#{1000 + n}",
        "order_number": 1000 + n,
        "email": f"buyer{n}@example.com",
        "contact_email": f"buyer{n}@example.com",
        "phone": None,
        "created_at": "2024-03-01T12:00:00+01:00",
        "processed_at": "2024-03-01T12:00:00+01:00",
        "updated_at": updated_at,
        "currency": "EUR",
        "total_price": f"{n * 20}.90",
        "subtotal_price": f"{n * 20}.00",
        "total_tax": "3.33",
        "total_discounts": "0.00",
        "financial_status": "paid",
        "fulfillment_status": None,
        "cancelled_at": None,
        "cancel_reason": None,
        "closed_at": None,
        "source_name": "web",
        "tags": "",
        "customer": None
        if customer_id is None
        else {"id": customer_id, "email": "person1@example.com", "phone": "+4915112345001", "state": "enabled"},
        "line_items": [
            {
                "id": 7000 + n,
                "product_id": 8000,
                "variant_id": 9000,
                "sku": "TEE-M",
                "title": "T-shirt",
                "variant_title": "M",
                "quantity": 2,
                "price": "10.00",
                "vendor": "cdp",
            }
        ],
    }
    return base | overrides
