"""Shopify objects -> cdp records: profiles, consent, orders; and a graph into the profile store."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import respx
import sqlalchemy as sa
from cdp_core import RecordKind
from cdp_core.http import HttpFactory
from cdp_core.testing import make_context, run_graph
from cdp_profiles.store.kinds import row_for
from shopify_fake import BASE, SHOP, TOKEN, FakeShopify, customer, order

import cdp_shopify
from cdp_shopify import CONSENT_STATUS, ShopifyConfig, ShopifySource
from cdp_shopify.models import Customer, Order


def source(tmp_path: Path, http: HttpFactory) -> ShopifySource:
    config = ShopifyConfig.model_validate({"shop": SHOP, "access_token": TOKEN})
    return ShopifySource(config, make_context(tmp_path, "shop", services={"http": http}))


def test_customer_profile() -> None:
    record = cdp_shopify.customer_profile(
        Customer.model_validate(customer(1, "2024-05-01T10:00:00+02:00")), "shop.customers"
    )
    assert record.kind is RecordKind.profile and record.key == "1001" and record.stream == "shop.customers"
    assert record.identifiers == {
        "shopify_customer_id": "1001",
        "email": "person1@example.com",
        "phone": "+4915112345001",
    }
    data = record.data
    assert data["first_name"] == "First1" and data["last_name"] == "Last1"
    assert data["tags"] == ["vip", "newsletter"]
    assert data["orders_count"] == 1 and data["total_spent"] == "10.50"
    assert data["city"] == "Berlin" and data["country"] == "Germany" and data["country_code"] == "DE"
    assert data["addresses"] == [{"city": "Berlin", "country": "Germany", "country_code": "DE"}]
    assert record.occurred_at is not None and record.occurred_at.isoformat() == "2024-05-01T08:00:00+00:00"
    assert row_for(record)["data"] is data


def test_the_customers_default_trait_mapping() -> None:
    record = cdp_shopify.customer_profile(
        Customer.model_validate(customer(1, "2024-05-01T10:00:00+02:00")), "shop.customers"
    )
    source = ShopifySource(ShopifyConfig(shop=SHOP, access_token=TOKEN), make_context(Path("."), "shop"))
    mapping = source.stream("customers").traits
    assert mapping is not None and source.stream("orders").traits is None
    assert mapping.apply(record.data) == (
        {
            "first_name": "First1",
            "last_name": "Last1",
            "tags": ["vip", "newsletter"],
            "orders_count": 1,
            "total_spent": 10.5,
            "currency": "EUR",
            "city": "Berlin",
            "country": "Germany",
            "country_code": "DE",
            "zip": "10115",
            "verified_email": True,
            "customer_since": "2024-01-01T14:00:00+00:00",
        },
        [],
    )  # not the customer id, the account state, the address list or updated_at


def test_a_customers_mapping_in_the_config_replaces_the_default() -> None:
    config = ShopifyConfig(shop=SHOP, access_token=TOKEN, traits={"customers": ["first_name", "note"]})  # type: ignore[arg-type]
    mapping = ShopifySource(config, make_context(Path("."), "shop")).stream("customers").traits
    assert mapping is not None and mapping.apply({"first_name": "A", "note": "n", "city": "B"})[0] == {
        "first_name": "A",
        "note": "n",
    }
    with pytest.raises(ValueError, match="no stream 'orders'"):
        ShopifyConfig(shop=SHOP, access_token=TOKEN, traits={"orders": ["total"]})  # type: ignore[arg-type]


def test_customer_without_email_or_address() -> None:
    raw = customer(2, "2024-05-01T10:00:00Z", email=None, phone=None, addresses=[], default_address=None, tags="")
    record = cdp_shopify.customer_profile(Customer.model_validate(raw), "shop.customers")
    assert record.identifiers == {"shopify_customer_id": "1002"}
    assert "city" not in record.data and record.data["tags"] == []


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("subscribed", "granted"),
        ("unsubscribed", "revoked"),
        ("not_subscribed", "denied"),
        ("pending", "denied"),
        ("invalid", "denied"),
        ("redacted", "revoked"),
        ("SUBSCRIBED", "granted"),
    ],
)
def test_consent_states(state: str, status: str) -> None:
    raw = customer(
        1,
        "2024-05-01T10:00:00Z",
        email_marketing_consent={"state": state, "opt_in_level": "single_opt_in", "consent_updated_at": None},
        sms_marketing_consent=None,
    )
    [record] = cdp_shopify.customer_consents(Customer.model_validate(raw), "shop.consents")
    assert record.kind is RecordKind.consent and record.key == "1001:email"
    assert record.data["purpose"] == "email" and record.data["status"] == status
    assert record.data["shopify_state"] == state and record.data["source"] == "shopify"
    row = row_for(record)  # what the profile store reads
    assert row["purpose"] == "email" and row["status"] == status and row["source"] == "shopify"
    assert record.occurred_at is not None and record.occurred_at.isoformat() == "2024-05-01T10:00:00+00:00"


def test_consent_records_per_purpose() -> None:
    records = cdp_shopify.customer_consents(
        Customer.model_validate(customer(1, "2024-05-01T10:00:00Z")), "shop.consents"
    )
    email, sms = records
    assert (email.key, email.data["status"], email.data["opt_in_level"]) == (
        "1001:email",
        "granted",
        "confirmed_opt_in",
    )
    assert email.occurred_at is not None and email.occurred_at.isoformat() == "2024-02-01T15:00:00+00:00"
    assert (sms.key, sms.data["purpose"], sms.data["status"]) == ("1001:sms", "sms", "denied")
    assert sms.data["collected_from"] == "OTHER"
    for record in records:
        assert record.identifiers["shopify_customer_id"] == "1001"
        assert record.identifiers["email"] == "person1@example.com" and record.identifiers["phone"] == "+4915112345001"
    assert set(CONSENT_STATUS.values()) <= {"granted", "denied", "revoked"}


def test_unknown_consent_state_is_quarantined(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    odd = customer(2, "2024-05-02T10:00:00Z", email_marketing_consent={"state": "maybe_later", "opt_in_level": None})
    cdp_respx.get(f"{BASE}/customers.json").mock(
        side_effect=FakeShopify("customers", [customer(1, "2024-05-01T10:00:00Z"), odd])
    )
    [page] = list(source(tmp_path, cdp_http).stream("consents").read(None))
    assert [r.key for r in page.records] == ["1001:email", "1001:sms"]
    [reject] = page.rejects
    assert reject.key == "1002" and "maybe_later" in reject.reason
    assert "person2@example.com" not in str(reject.raw)  # the quarantined raw holds the consent, not the person


def test_order_record_reads_as_an_order() -> None:
    record = cdp_shopify.order_record(Order.model_validate(order(3, "2024-05-02T10:00:00Z")), "shop.orders")
    assert record.kind is RecordKind.order and record.key == "5003"
    assert record.identifiers == {
        "shopify_customer_id": "1001",
        "email": "person1@example.com",
        "phone": "+4915112345001",
    }
    row = row_for(record)
    assert row["order_id"] == "5003" and row["amount"] == Decimal("60.90") and row["currency"] == "EUR"
    assert row["status"] == "paid"
    assert row["items"] == [
        {
            "id": 7003, "product_id": 8000, "variant_id": 9000, "sku": "TEE-M", "title": "T-shirt",
            "variant_title": "M", "quantity": 2, "price": "10.00",
        }
    ]  # fmt: skip
    assert record.occurred_at is not None and record.occurred_at.isoformat() == "2024-03-01T11:00:00+00:00"


def test_guest_checkout_uses_the_order_email() -> None:
    record = cdp_shopify.order_record(
        Order.model_validate(order(2, "2024-05-02T10:00:00Z", customer_id=None, phone="+4930123456")), "shop.orders"
    )
    assert record.identifiers == {"email": "buyer2@example.com", "phone": "+4930123456"}
    assert record.data["guest"] is True


def test_shopify_graph_into_the_profile_store(register_plugin: Any, tmp_path: Path, cdp_respx: respx.Router) -> None:
    """The README's connectors.toml snippet, run by the real runner into the profile store."""
    people = [customer(1, "2024-05-01T10:00:00Z"), customer(2, "2024-05-02T10:00:00Z")]
    cdp_respx.get(f"{BASE}/customers.json").mock(side_effect=FakeShopify("customers", people))
    cdp_respx.get(f"{BASE}/orders.json").mock(
        side_effect=FakeShopify(
            "orders", [order(1, "2024-05-03T10:00:00Z"), order(2, "2024-05-03T11:00:00Z", customer_id=None)]
        )
    )
    run = run_graph(
        tmp_path,
        f"""
[connectors.shop]
type = "shopify"
shop = "{SHOP}"
access_token = "${{SHOPIFY_TOKEN}}"
api_version = "2024-10"

[connectors.store]
type = "profile_store"

[syncs.main.nodes.customers]
source = "shop.customers"

[syncs.main.nodes.consents]
source = "shop.consents"

[syncs.main.nodes.orders]
source = "shop.orders"

[syncs.main.nodes.store]
destination = "store"
inputs = ["customers", "consents", "orders"]
""",
        register_plugin(cdp_shopify, extra=["profiles"]),
        env={"SHOPIFY_TOKEN": TOKEN},
    )
    assert run.status == "succeeded", run.error
    store = run.nodes["store"]
    assert (store.records_in, store.records_out, store.rejected) == (2 + 4 + 2, 8, 0)
    engine = sa.create_engine(f"sqlite:///{tmp_path}/store.sqlite")
    with engine.connect() as db:
        live = db.execute(sa.text("SELECT COUNT(*) FROM profiles WHERE merged_into IS NULL")).scalar()
    engine.dispose()
    assert live == 3  # customer 1 (with its order), customer 2, and the guest buyer
