"""The core's contract of a source (SourceConformance), on each Shopify stream, against the fake API."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import respx
from cdp_core.testing import SourceConformance
from shopify_fake import BASE, SHOP, TOKEN, FakeShopify, customer, order

import cdp_shopify

CONFIG: dict[str, Any] = {"shop": SHOP, "access_token": TOKEN, "api_version": "2024-10", "page_size": 2}


def customers() -> list[dict[str, Any]]:
    return [
        customer(1, "2024-05-01T10:00:00+02:00"),
        customer(2, "2024-05-03T10:00:00+02:00"),
        customer(3, "2024-05-02T10:00:00+02:00"),
        customer(4, "2024-05-03T10:00:00+02:00"),  # the same updated_at as customer 2
        customer(5, "2024-05-04T10:00:00+02:00", sms_marketing_consent=None, phone=None),
    ]


def orders() -> list[dict[str, Any]]:
    return [
        order(1, "2024-05-01T10:00:00Z"),
        order(2, "2024-05-02T10:00:00Z", customer_id=None),
        order(3, "2024-05-02T10:00:00Z"),
        order(4, "2024-05-05T10:00:00Z"),
        order(5, "2024-05-04T10:00:00Z", customer_id=None),
    ]


class _Shopify(SourceConformance):
    plugin = cdp_shopify
    type_name = "shopify"
    config: ClassVar[dict[str, Any]] = CONFIG
    resource = "customers"

    def rows(self) -> list[dict[str, Any]]:
        return customers()

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        self.fake = FakeShopify(self.resource, self.rows())
        respx_mock.get(f"{BASE}/{self.resource}.json").mock(side_effect=self.fake)

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        respx_mock.get(f"{BASE}/{self.resource}.json").mock(side_effect=FakeShopify(self.resource, []))

    def touch_first(self, **changes: Any) -> str:
        """An edit in the shop while the read pages: the first item gets the newest updated_at.

        Shopify pages one filtered query by id (``page_info`` holds the last id), so the item keeps
        its place in this read; the newer updated_at puts it past the cursor's mark for the next run.
        """
        item = min(self.fake.items, key=lambda i: i["id"])
        item |= {"updated_at": "2024-05-09T10:00:00Z", **changes}
        return str(item["id"])


class TestCustomers(_Shopify):
    stream = "customers"

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.fake.items.append(customer(6, "2024-06-01T08:00:00Z"))
        self.fake.items[0]["updated_at"] = "2024-06-02T08:00:00Z"  # customer 1 changed since the last run
        return ["1006", "1001"]

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> str:
        return self.touch_first()


class TestConsents(_Shopify):
    stream = "consents"

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.fake.items.append(customer(6, "2024-06-01T08:00:00Z", sms_marketing_consent=None))
        self.fake.items[1]["updated_at"] = "2024-06-02T08:00:00Z"
        self.fake.items[1]["email_marketing_consent"] = {
            "state": "unsubscribed",
            "opt_in_level": "confirmed_opt_in",
            "consent_updated_at": "2024-06-02T08:00:00Z",
        }
        return ["1006:email", "1002:email", "1002:sms"]

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        customer_id = self.touch_first()  # one customer gives both consent records: both come again
        return [f"{customer_id}:email", f"{customer_id}:sms"]


class TestOrders(_Shopify):
    stream = "orders"
    resource = "orders"

    def rows(self) -> list[dict[str, Any]]:
        return orders()

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        self.fake.items.append(order(6, "2024-06-01T08:00:00Z"))
        self.fake.items[2] |= {"updated_at": "2024-06-03T08:00:00Z", "financial_status": "refunded"}
        return ["5006", "5003"]

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> str:
        return self.touch_first(financial_status="refunded")
