"""Shopify webhooks: the signature, what is logged, and the records the webhook streams make of it."""

from __future__ import annotations

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
from shopify_fake import BASE, SHOP, TOKEN, FakeShopify
from shopify_webhook_samples import (
    CUSTOMER,
    CUSTOMER_DELETED,
    ORDER,
    ORDER_DELETED,
    SECRET,
    headers,
    raw,
    sign,
)

from cdp_shopify import ShopifyConfig, ShopifySource, ShopifyWebhook, consent_records, customer_records, order_records

AT = datetime(2024, 5, 1, 10, 0, 1, tzinfo=UTC)


def config(**options: Any) -> ShopifyConfig:
    return ShopifyConfig.model_validate({"shop": SHOP, "access_token": TOKEN, "webhook_secret": SECRET, **options})


def webhook(**options: Any) -> ShopifyWebhook:
    return ShopifyWebhook(config(**options), make_context(Path("."), "shop"))


def entry(topic: str, payload: dict[str, Any]) -> IngestEntry:
    body = raw(payload)
    [logged] = webhook().entries(headers(topic, body), body, AT)
    return logged


def test_the_plugin_registers_its_webhook_for_the_shopify_type() -> None:
    plugins = load_plugins()
    assert plugins.webhooks["shopify"] is ShopifyWebhook
    assert plugins.info["shopify"].registered["webhooks"] == ["shopify"]


# -- the signature ----------------------------------------------------------------------------------


def test_a_good_signature_verifies() -> None:
    body = raw(CUSTOMER)
    assert webhook().verify(headers("customers/create", body), body)


def test_header_names_in_any_case() -> None:
    body = raw(CUSTOMER)
    lower = {k.lower(): v for k, v in headers("customers/create", body).items()}
    assert webhook().verify(lower, body)


@pytest.mark.parametrize(
    "signature",
    [
        sign(raw(CUSTOMER), "another-secret"),  # signed with another secret
        "sha256=" + sign(raw(CUSTOMER)),  # a prefix Shopify does not send
        sign(raw(CUSTOMER))[:-4],  # cut short
        "",
        "not base64 at all !",
    ],
)
def test_a_bad_signature_does_not_verify(signature: str) -> None:
    body = raw(CUSTOMER)
    assert not webhook().verify(headers("customers/create", body) | {"X-Shopify-Hmac-Sha256": signature}, body)


def test_a_missing_signature_does_not_verify() -> None:
    body = raw(CUSTOMER)
    sent = {k: v for k, v in headers("customers/create", body).items() if k != "X-Shopify-Hmac-Sha256"}
    assert not webhook().verify(sent, body)


def test_a_tampered_body_does_not_verify() -> None:
    body = raw(CUSTOMER)
    tampered = raw(CUSTOMER | {"email": "mallory@example.com"})
    assert not webhook().verify(headers("customers/create", body), tampered)
    assert not webhook().verify(headers("customers/create", body), body + b" ")


def test_without_a_webhook_secret_nothing_verifies_and_it_says_why() -> None:
    hook = ShopifyWebhook(ShopifyConfig(shop=SHOP, access_token=TOKEN), make_context(Path("."), "shop"))  # type: ignore[arg-type]
    body = raw(CUSTOMER)
    assert not hook.verify(headers("customers/create", body), body)
    assert hook.unavailable() == "[connectors.shop] sets no webhook_secret"
    assert webhook().unavailable() is None


def test_the_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    body = raw(CUSTOMER)
    assert webhook().verify(headers("customers/create", body), body)
    assert compared == [(sign(body).encode(), sign(body).encode())]


# -- what is logged ---------------------------------------------------------------------------------


def test_a_delivery_is_logged_under_shopifys_webhook_id_with_its_topic() -> None:
    body = raw(ORDER)
    assert webhook().entries(headers("orders/create", body), body, AT) == [
        IngestEntry("shop", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "orders/create", ORDER, AT)
    ]


def test_a_retry_carries_the_same_message_id_and_another_delivery_another() -> None:
    body = raw(ORDER)
    first = webhook().entries(headers("orders/updated", body), body, AT)[0]
    retry = webhook().entries(headers("orders/updated", body), body, AT)[0]
    other = webhook().entries(headers("orders/updated", body, webhook_id="another-delivery"), body, AT)[0]
    assert first.message_id == retry.message_id != other.message_id


def test_a_delivery_without_a_webhook_id_is_logged_under_its_bodys_digest() -> None:
    body = raw(ORDER)
    sent = {k: v for k, v in headers("orders/create", body).items() if k != "X-Shopify-Webhook-Id"}
    [logged] = webhook().entries(sent, body, AT)
    assert (
        logged.message_id.startswith("sha256:") and logged.message_id == webhook().entries(sent, body, AT)[0].message_id
    )


@pytest.mark.parametrize("topic", ["customers/delete", "orders/delete", "customers/update", "orders/paid"])
def test_the_kept_topics(topic: str) -> None:
    payload = {"customers/delete": CUSTOMER_DELETED, "orders/delete": ORDER_DELETED}.get(topic, CUSTOMER)
    assert entry(topic, payload).kind == topic


def test_another_topic_is_acknowledged_and_not_kept() -> None:
    body = raw({"id": 1})
    assert webhook().entries(headers("products/update", body), body, AT) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"X-Shopify-Topic": ""}, "shopify webhook: no X-Shopify-Topic header"),
        (
            {"X-Shopify-Shop-Domain": "other-shop.myshopify.com"},
            "X-Shopify-Shop-Domain is 'other-shop.myshopify.com'; connector 'shop' reads 'test-shop.myshopify.com'",
        ),
    ],
)
def test_a_delivery_it_cannot_place_is_a_payload_error(change: dict[str, str], message: str) -> None:
    body = raw(CUSTOMER)
    with pytest.raises(WebhookPayloadError) as caught:
        webhook().entries(headers("customers/create", body) | change, body, AT)
    assert message in str(caught.value) and SECRET not in str(caught.value)


def test_a_body_that_is_not_json_is_a_payload_error() -> None:
    with pytest.raises(WebhookPayloadError, match="shopify webhook orders/create: the body is not JSON") as caught:
        webhook().entries(headers("orders/create", b"{oops"), b"{oops", AT)
    assert SECRET not in str(caught.value)


# -- the records: what the pull streams make of the same object -------------------------------------


def pulled(tmp_path: Path, http: HttpFactory, router: respx.Router, stream: str, item: dict[str, Any]) -> list[Any]:
    resource = "orders" if stream == "orders" else "customers"
    router.get(f"{BASE}/{resource}.json").mock(side_effect=FakeShopify(resource, [item]))
    source = ShopifySource(config(), make_context(tmp_path, "shop", services={"http": http}))
    return [r for page in source.stream(stream).read(None) for r in page.records]


def test_a_customer_gives_the_records_the_pull_streams_make(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    logged = entry("customers/create", CUSTOMER)
    profiles = customer_records(logged)
    assert profiles == pulled(tmp_path, cdp_http, cdp_respx, "customers", CUSTOMER)
    assert [(r.stream, r.key) for r in profiles] == [("shop.customers", "706405506930370084")]
    assert profiles[0].identifiers == {"shopify_customer_id": "706405506930370084", "email": "bob@biller.com"}
    consents = consent_records(logged)
    assert consents == pulled(tmp_path, cdp_http, cdp_respx, "consents", CUSTOMER)
    assert [(r.stream, r.key, r.data["status"]) for r in consents] == [
        ("shop.consents", "706405506930370084:email", "granted")
    ]
    assert order_records(logged) == []


def test_an_order_gives_the_record_the_pull_stream_makes(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    logged = entry("orders/updated", ORDER)
    [record] = order_records(logged)
    assert [record] == pulled(tmp_path, cdp_http, cdp_respx, "orders", ORDER)
    assert (record.stream, record.key, record.data["amount"]) == ("shop.orders", "820982911946154508", "403.00")
    assert record.identifiers == {"shopify_customer_id": "115310627314723954", "email": "john@example.com"}
    assert customer_records(logged) == [] and consent_records(logged) == []


def test_the_webhook_streams_read_with_the_pull_streams_mapping(tmp_path: Path) -> None:
    source = ShopifySource(config(traits={"customers": ["first_name"]}), make_context(tmp_path, "shop"))
    customers = source.stream("webhook_customers")
    assert customers.traits is not None and customers.traits.apply({"first_name": "A", "city": "B"})[0] == {
        "first_name": "A"
    }
    assert customers.identifier_types == source.stream("customers").identifier_types
    logged = entry("customers/update", CUSTOMER)
    assert customers.records(logged) == customer_records(logged)
    assert source.stream("webhook_consents").records(logged) == consent_records(logged)
    order = entry("orders/create", ORDER)
    assert source.stream("webhook_orders").records(order) == order_records(order)
    assert [source.stream(n).kind for n in ShopifyWebhook.streams] == ["profile", "consent", "order"]


def test_deletions_are_tombstones_of_the_pull_streams_records() -> None:
    deleted = entry("customers/delete", CUSTOMER_DELETED)
    [gone] = customer_records(deleted)
    assert (gone.stream, gone.kind, gone.key, gone.deleted) == ("shop.customers", "profile", "706405506930370084", True)
    assert gone.occurred_at == AT and gone.data == {} and gone.identifiers == {} and not gone.missing_ok
    assert order_records(deleted) == []
    # the body does not say which consents the customer gave: a tombstone of each purpose's record, each
    # missing_ok (the customer may never have had it)
    consents = [
        (c.stream, c.kind, c.key, c.deleted, c.missing_ok, c.occurred_at, c.data, c.identifiers)
        for c in consent_records(deleted)
    ]
    expected = [("shop.consents", "consent", f"{gone.key}:{p}", True, True, AT, {}, {}) for p in ("email", "sms")]
    assert consents == expected
    [order] = order_records(entry("orders/delete", ORDER_DELETED))
    assert (order.stream, order.kind, order.key, order.deleted) == ("shop.orders", "order", str(ORDER_DELETED["id"]), True)
    assert not order.missing_ok
    for records in (customer_records, consent_records):
        with pytest.raises(EntryRejected, match="no id of the deleted object"):
            records(entry("customers/delete", {"id": None}))


def test_an_object_of_the_wrong_shape_is_rejected_with_the_field_not_its_value() -> None:
    logged = entry("customers/update", CUSTOMER | {"updated_at": "bob@biller.com"})
    with pytest.raises(EntryRejected, match="customers/update .*: does not match Customer: updated_at: ") as caught:
        customer_records(logged)
    assert "bob@biller.com" not in str(caught.value)


def test_an_unknown_consent_state_is_rejected() -> None:
    logged = entry("customers/update", CUSTOMER | {"email_marketing_consent": {"state": "maybe"}})
    with pytest.raises(EntryRejected, match="unknown Shopify marketing consent state 'maybe'"):
        consent_records(logged)
