"""Shopify's webhooks end to end: signed deliveries through `cdp serve`'s application into the ingest log, a graph
on the webhook streams run by the real runner into the profile store, and a later pull of the same customer and
order updating those rows instead of adding new ones. Both databases."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import respx
from cdp_core.http import HttpFactory
from cdp_core.testing import RegisterPlugin
from cdp_core.testing.serve import Served, serve_config
from cdp_profiles.store import tables
from cdp_profiles.store.profiles import UNKNOWN_DELETION
from shopify_fake import BASE, SHOP, TOKEN, FakeShopify
from shopify_webhook_samples import CUSTOMER, CUSTOMER_DELETED, ORDER, SECRET, headers, raw
from sqlalchemy import select

import cdp_shopify

CONFIG = f"""
[connectors.shop]
type = "shopify"
shop = "{SHOP}"
access_token = "${{SHOPIFY_TOKEN}}"
webhook_secret = "${{SHOPIFY_WEBHOOK_SECRET}}"

[connectors.store]
type = "profile_store"

[syncs.live.nodes.customers]
source = "shop.webhook_customers"

[syncs.live.nodes.consents]
source = "shop.webhook_consents"

[syncs.live.nodes.orders]
source = "shop.webhook_orders"

[syncs.live.nodes.store]
destination = "store"
inputs = ["customers", "consents", "orders"]

[syncs.pull.nodes.customers]
source = "shop.customers"

[syncs.pull.nodes.orders]
source = "shop.orders"

[syncs.pull.nodes.store]
destination = "store"
inputs = ["customers", "orders"]
"""
ENV = {"SHOPIFY_TOKEN": TOKEN, "SHOPIFY_WEBHOOK_SECRET": SECRET}


@pytest.fixture
def served(tmp_path: Path, register_plugin: RegisterPlugin, store_url: str) -> Any:
    plugins = register_plugin(cdp_shopify, extra=["profiles"])
    with serve_config(tmp_path, CONFIG, plugins, env=ENV, store_url=store_url) as served:
        yield served


def deliver(served: Served, topic: str, payload: dict[str, Any], webhook_id: str, **changed: str) -> Any:
    body = raw(payload)
    return served.client.post(
        "/webhooks/shop", content=body, headers=headers(topic, body, webhook_id=webhook_id) | changed
    )


def bobs_traits(served: Served) -> dict[str, Any]:
    owner = select(tables.identities.c.profile_id).where(tables.identities.c.type == "email", tables.identities.c.value == "bob@biller.com")
    with served.system.engine.connect() as conn:
        [traits] = conn.execute(select(tables.profiles.c.traits).where(tables.profiles.c.id == owner.scalar_subquery())).scalars()
    return dict(traits)


def test_signed_deliveries_are_logged_once_and_bad_ones_not_at_all(served: Served) -> None:
    answer = deliver(served, "customers/create", CUSTOMER, "wh-1")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True, "accepted": 1, "duplicates": 0}
    assert deliver(served, "orders/create", ORDER, "wh-2").json()["accepted"] == 1
    # Shopify's retry repeats X-Shopify-Webhook-Id: answered 200, dropped
    assert deliver(served, "customers/create", CUSTOMER, "wh-1").json() == {
        "success": True,
        "accepted": 0,
        "duplicates": 1,
    }

    body = raw(CUSTOMER | {"email": "mallory@example.com"})
    forged = headers("customers/update", raw(CUSTOMER), webhook_id="wh-3")  # signed over another body
    refused = served.client.post("/webhooks/shop", content=body, headers=forged)
    assert refused.status_code == 401 and refused.json() == {"success": False, "error": "the signature does not match"}
    unsigned = {k: v for k, v in headers("customers/update", body, webhook_id="wh-4").items() if "Hmac" not in k}
    assert served.client.post("/webhooks/shop", content=body, headers=unsigned).status_code == 401

    # signed, but of another shop: 400 naming it; a topic not kept: 200, nothing logged
    other = deliver(served, "customers/create", CUSTOMER, "wh-6", **{"X-Shopify-Shop-Domain": "other.myshopify.com"})
    assert other.status_code == 400 and "other.myshopify.com" in other.json()["error"]
    assert deliver(served, "products/create", {"id": 1}, "wh-7").json() == {
        "success": True,
        "accepted": 0,
        "duplicates": 0,
    }
    # Shopify makes no subscription check: a GET is not taken
    assert served.client.get("/webhooks/shop").status_code == 405

    logged = served.logged()
    assert [(r.source, r.message_id, r.kind) for r in logged] == [
        ("shop", "wh-1", "customers/create"),
        ("shop", "wh-2", "orders/create"),
    ]
    assert logged[0].body == CUSTOMER and logged[1].body == ORDER
    metrics = served.client.get("/metrics").text
    assert 'cdp_ingest_rejected_total{source="shop",reason="bad_signature"} 2' in metrics
    assert SECRET not in metrics


def test_webhook_records_are_the_pull_records_a_later_pull_updates_them(
    served: Served, cdp_respx: respx.Router, cdp_http: HttpFactory
) -> None:
    assert deliver(served, "customers/create", CUSTOMER, "wh-1").status_code == 200
    assert deliver(served, "orders/create", ORDER, "wh-2").status_code == 200
    services = {"http": cdp_http}
    live = served.run("live", services=services)
    assert live.status == "succeeded", live.error
    assert (live.nodes["customers"].records_out, live.nodes["consents"].records_out) == (1, 1)
    assert live.nodes["orders"].records_out == 1

    customer_id, order_id = str(CUSTOMER["id"]), str(ORDER["id"])
    # the pull streams' names and keys
    index = "SELECT stream, key, kind FROM record_index ORDER BY stream, key"
    assert served.query(index) == [
        ("shop.consents", f"{customer_id}:email", "consent"),
        ("shop.customers", customer_id, "profile"),
        ("shop.orders", order_id, "order"),
    ]
    emails = "SELECT value FROM identities WHERE type = 'email' ORDER BY value"
    assert served.query(emails) == [("bob@biller.com",), ("john@example.com",)]  # the order's buyer too
    assert served.query("SELECT order_id, status FROM orders") == [(order_id, "voided")]

    # Nothing new in the log: the next live run reads nothing.
    assert served.run("live", services=services).nodes["customers"].records_out == 0

    # The scheduled pull then finds the same customer and order, changed since: the rows are updated, not added.
    customer = CUSTOMER | {"first_name": "Robert", "updated_at": "2022-01-02T10:00:00-05:00"}
    order = ORDER | {"financial_status": "paid", "cancelled_at": None, "updated_at": "2022-01-02T10:00:00-05:00"}
    cdp_respx.get(f"{BASE}/customers.json").mock(side_effect=FakeShopify("customers", [customer]))
    cdp_respx.get(f"{BASE}/orders.json").mock(side_effect=FakeShopify("orders", [order]))
    pull = served.run("pull", services=services)
    assert pull.status == "succeeded", pull.error
    assert (pull.nodes["customers"].records_out, pull.nodes["orders"].records_out) == (1, 1)
    assert served.query(index) == [
        ("shop.consents", f"{customer_id}:email", "consent"),
        ("shop.customers", customer_id, "profile"),
        ("shop.orders", order_id, "order"),
    ]
    assert served.query("SELECT count(*) FROM profiles WHERE merged_into IS NULL") == [(2,)]  # Bob, John
    assert bobs_traits(served)["first_name"] == "Robert"
    assert served.query("SELECT order_id, status FROM orders") == [(order_id, "paid")]

    # A webhook of the later update after the pull: the same rows again.
    newer = customer | {"last_name": "Billings", "updated_at": "2022-01-03T10:00:00-05:00"}
    assert deliver(served, "customers/update", newer, "wh-5").json()["accepted"] == 1
    assert served.run("live", services=services).status == "succeeded"
    assert served.query("SELECT count(*) FROM record_index") == [(3,)]
    assert served.query("SELECT count(*) FROM profiles WHERE merged_into IS NULL") == [(2,)]
    assert bobs_traits(served)["last_name"] == "Billings"


def test_a_deleted_customer_leaves_no_profile_and_no_consent_behind(served: Served, cdp_http: HttpFactory) -> None:
    """customers/delete removes the customer's consent records too: they carry the customer's identifiers, so
    left behind they would keep the person (and has_consent('email')) alive in the store."""
    services = {"http": cdp_http}
    customer_id = str(CUSTOMER["id"])
    assert CUSTOMER["email_marketing_consent"]["state"] == "subscribed" and CUSTOMER["sms_marketing_consent"] is None
    assert deliver(served, "customers/create", CUSTOMER, "wh-1").status_code == 200
    assert served.run("live", services=services).status == "succeeded"
    person = "SELECT count(*) FROM profiles WHERE merged_into IS NULL"
    consents = "SELECT stream, key, purpose, status FROM consents"
    assert served.query(person) == [(1,)]
    assert served.query(consents) == [("shop.consents", f"{customer_id}:email", "email", "granted")]

    assert deliver(served, "customers/delete", CUSTOMER_DELETED, "wh-2").status_code == 200
    run = served.run("live", services=services)
    assert run.status == "succeeded", run.error
    assert served.query(person) == [(0,)]
    assert served.query(consents) == []
    assert served.query("SELECT count(*) FROM record_index") == [(0,)]
    assert served.query("SELECT count(*) FROM identities") == [(0,)]
    assert (run.nodes["customers"].records_out, run.nodes["consents"].records_out) == (1, 2)  # ID:email, ID:sms
    # Bob never had SMS consent: the tombstone of ID:sms (missing_ok) deletes nothing, and silently.
    assert run.nodes["store"].warnings == {}, f"no {UNKNOWN_DELETION!r}"


def test_a_delivery_of_the_wrong_shape_is_quarantined_with_the_reason(served: Served, cdp_http: HttpFactory) -> None:
    broken = {k: v for k, v in CUSTOMER.items() if k != "id"}
    assert deliver(served, "customers/update", broken, "wh-9").status_code == 200  # signed: logged as it came
    assert deliver(served, "customers/create", CUSTOMER, "wh-10").status_code == 200
    run = served.run("live", services={"http": cdp_http})
    assert run.status == "succeeded", run.error
    assert (run.nodes["customers"].records_out, run.nodes["customers"].rejected) == (1, 1)
    [entry] = served.system.quarantine(run.graph, "customers")
    reason, payload = entry["reason"], entry["payload"]
    assert "shopify webhook customers/update wh-9: does not match Customer" in reason and "id" in reason
    assert payload["message_id"] == "wh-9" and payload["kind"] == "customers/update"


@pytest.mark.parametrize(
    ("unset", "why"),
    [
        ("option", "[connectors.shop] sets no webhook_secret"),
        ("variable", "SHOPIFY_WEBHOOK_SECRET"),
    ],
)
def test_a_connector_without_its_webhook_secret_refuses_every_delivery(
    tmp_path: Path, register_plugin: RegisterPlugin, store_url: str, unset: str, why: str
) -> None:
    """No secret, no verification: 401 whether the option is left out or its ${ENV} variable is not set, and the
    operator is told which at the start."""
    plugins = register_plugin(cdp_shopify, extra=["profiles"])
    config, env = CONFIG, dict(ENV)
    if unset == "option":
        config = CONFIG.replace('webhook_secret = "${SHOPIFY_WEBHOOK_SECRET}"\n', "")
    else:
        del env["SHOPIFY_WEBHOOK_SECRET"]
    with serve_config(tmp_path, config, plugins, env=env, store_url=store_url) as served:
        refused = deliver(served, "customers/create", CUSTOMER, "wh-1")
        assert refused.status_code == 401, refused.text
        assert refused.json() == {"success": False, "error": "this webhook cannot verify deliveries"}
        assert served.logged() == []
        [note] = served.serving.notes
        assert note.startswith("connectors.shop: its webhook answers 401 to every request: ") and why in note


def test_a_continuous_graph_stores_the_customer_within_seconds(
    tmp_path: Path, register_plugin: RegisterPlugin, store_url: str
) -> None:
    """`continuous = true`: cdp serve runs the graph on the webhook streams as deliveries arrive, no sync by hand."""
    plugins = register_plugin(cdp_shopify, extra=["profiles"])
    config = CONFIG.replace(
        "[syncs.live.nodes.customers]", "[syncs.live]\ncontinuous = true\n\n[syncs.live.nodes.customers]"
    )
    with serve_config(tmp_path, config, plugins, env=ENV, store_url=store_url) as served:
        assert served.serving.worker.graphs == ["live"]
        assert deliver(served, "customers/create", CUSTOMER, "wh-1").status_code == 200
        stored = "SELECT stream, key FROM record_index WHERE kind = 'profile'"
        deadline = time.monotonic() + 60
        while not (found := served.query(stored)):
            assert time.monotonic() < deadline, "the continuous graph did not store the customer within 60 s"
            time.sleep(0.05)
        assert found == [("shop.customers", str(CUSTOMER["id"]))]
