"""What the Shopify source does over HTTP: Link paging rules, incremental marks, rate limits, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import shopify_fake
from cdp_core.http import AuthError, HttpFactory, RateLimited, ResponseError
from cdp_core.testing import RegisterPlugin, kit_plugin, make_context, roundtrip, run_twice
from shopify_fake import BASE, CALL_LIMIT, SHOP, TOKEN, FakeShopify, customer, order

import cdp_shopify
from cdp_shopify import ShopifyConfig, ShopifySource

CUSTOMERS = f"{BASE}/customers.json"
ORDERS = f"{BASE}/orders.json"


def five() -> list[dict[str, Any]]:
    return [customer(n, f"2024-05-0{n}T10:00:00Z") for n in range(1, 6)]


def build(tmp_path: Path, http: HttpFactory, **options: Any) -> ShopifySource:
    config = ShopifyConfig.model_validate({"shop": SHOP, "access_token": TOKEN, "page_size": 2, **options})
    return ShopifySource(config, make_context(tmp_path, "shop", services={"http": http}))


def read(source: ShopifySource, stream: str = "customers", cursor: Any = None) -> tuple[list[str], Any]:
    keys: list[str] = []
    final = cursor
    for page in source.stream(stream).read(roundtrip(cursor) if cursor is not None else None):
        keys += [r.key for r in page.records]
        final = page.cursor
    return keys, final


# -- paging ------------------------------------------------------------------------------------


def test_link_paging_across_pages_sends_only_limit_with_page_info(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    fake = FakeShopify("customers", five())
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    keys, final = read(build(tmp_path, cdp_http))
    assert keys == ["1001", "1002", "1003", "1004", "1005"]
    assert len(fake.requests) == 3
    assert fake.query_of(0) == {"limit": "2"}  # the first run: no updated_at_min yet
    for n in (1, 2):
        assert set(fake.query_of(n)) == {"limit", "page_info"}, fake.query_of(n)
    assert fake.requests[0].headers["X-Shopify-Access-Token"] == TOKEN
    assert set(final) == {"updated_at_min", "seen"}  # a completed read keeps no page_info


def test_orders_ask_for_any_status(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeShopify("orders", [order(n, f"2024-05-0{n}T10:00:00Z") for n in range(1, 4)])
    cdp_respx.get(ORDERS).mock(side_effect=fake)
    keys, final = read(build(tmp_path, cdp_http), "orders")
    assert keys == ["5001", "5002", "5003"]
    assert fake.query_of(0) == {"limit": "2", "status": "any"}
    assert set(fake.query_of(1)) == {"limit", "page_info"}  # status=any travels inside page_info
    keys, _ = read(build(tmp_path, cdp_http), "orders", final)
    assert keys == []
    assert fake.query_of(2) == {"limit": "2", "status": "any", "updated_at_min": "2024-05-03T09:59:00+00:00"}


def test_page_size_defaults_to_shopifys_maximum(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeShopify("customers", five())
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    config = ShopifyConfig.model_validate({"shop": "test-shop", "access_token": TOKEN})
    source = ShopifySource(config, make_context(tmp_path, "shop", services={"http": cdp_http}))
    assert [r.key for p in source.stream("customers").read(None) for r in p.records] == [
        "1001", "1002", "1003", "1004", "1005",
    ]  # fmt: skip
    assert fake.query_of(0) == {"limit": "250"} and len(fake.requests) == 1


# -- incremental -------------------------------------------------------------------------------


def test_resume_from_a_saved_mid_read_cursor(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeShopify("customers", five())
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    first = next(iter(build(tmp_path, cdp_http).stream("customers").read(None)))
    assert [r.key for r in first.records] == ["1001", "1002"] and first.cursor["page_info"]
    keys, _ = read(build(tmp_path, cdp_http), cursor=first.cursor)  # a new process, the committed cursor
    assert keys == ["1003", "1004", "1005"]
    assert fake.query_of(1) == {"limit": "2", "page_info": first.cursor["page_info"]}


def test_incremental_run_reads_only_what_changed(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    fake = FakeShopify("customers", five())
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    _, cursor = read(build(tmp_path, cdp_http))
    # newest updated_at 2024-05-05T10:00Z minus the default 60 s lookback; the newest customer is "seen"
    assert cursor == {"updated_at_min": "2024-05-05T09:59:00+00:00", "seen": {"1005": "2024-05-05T10:00:00+00:00"}}
    fake.items[1]["updated_at"] = "2024-05-06T08:00:00Z"
    fake.items.append(customer(6, "2024-05-06T09:00:00Z"))
    keys, cursor = read(build(tmp_path, cdp_http), cursor=cursor)
    assert keys == ["1002", "1006"]
    assert fake.query_of(3)["updated_at_min"] == "2024-05-05T09:59:00+00:00"
    keys, _ = read(build(tmp_path, cdp_http), cursor=cursor)
    assert keys == []


def test_equal_timestamps_at_the_mark_are_neither_lost_nor_repeated(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    stamp = "2024-05-09T10:00:00Z"
    fake = FakeShopify("customers", [customer(1, stamp), customer(2, stamp)])
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    keys, cursor = read(build(tmp_path, cdp_http, lookback_seconds=0))
    assert keys == ["1001", "1002"]
    assert cursor["updated_at_min"] == "2024-05-09T10:00:00+00:00"  # inclusive: the boundary second is asked again
    # a third customer saved in the same second, visible only after the first read
    fake.items.append(customer(3, stamp))
    keys, cursor = read(build(tmp_path, cdp_http, lookback_seconds=0), cursor=cursor)
    assert keys == ["1003"]
    keys, _ = read(build(tmp_path, cdp_http, lookback_seconds=0), cursor=cursor)
    assert keys == []


def test_records_seen_at_the_mark_stay_skipped_on_later_pages(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """A newer record on page one moves the next mark, but must not unskip the old boundary on page two."""
    stamp = "2024-05-09T10:00:00Z"
    people = [customer(1, "2024-05-01T10:00:00Z"), customer(4, stamp), customer(5, stamp)]
    fake = FakeShopify("customers", people)
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    _, cursor = read(build(tmp_path, cdp_http))
    assert set(cursor["seen"]) == {"1004", "1005"}
    people[0]["updated_at"] = "2024-05-10T10:00:00Z"  # page one of the next read: 1001 (new), 1004 (seen)
    keys, cursor = read(build(tmp_path, cdp_http), cursor=cursor)  # page two: 1005 (seen)
    assert keys == ["1001"]
    assert cursor["seen"] == {"1001": "2024-05-10T10:00:00+00:00"}


def test_a_record_changed_during_a_long_read_is_caught_next_run(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """The mark never passes the server time at which the read began (minus the lookback)."""
    fake = FakeShopify("customers", five())
    fake.date = "Sat, 01 Jun 2024 12:00:00 GMT"

    def during_the_read(request_number: int) -> None:
        if request_number == 2:  # page 1 (customers 1, 2) is read; now two customers change
            fake.items[0]["updated_at"] = "2024-06-01T12:00:10Z"  # on a page already read: this read misses it
            fake.items[4]["updated_at"] = "2024-06-01T12:00:30Z"  # on a later page: this read gets it

    fake.before_answer = during_the_read
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    keys, cursor = read(build(tmp_path, cdp_http))
    assert keys == ["1001", "1002", "1003", "1004", "1005"]
    assert cursor["updated_at_min"] == "2024-06-01T11:59:00+00:00"  # the read's start minus 60 s, not 12:00:30
    assert cursor["seen"] == {"1005": "2024-06-01T12:00:30+00:00"}
    fake.before_answer = None
    keys, _ = read(build(tmp_path, cdp_http), cursor=cursor)
    assert keys == ["1001"]  # the missed change; customer 1005 is not delivered twice


def test_a_stale_page_info_restarts_from_the_mark(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    fake = FakeShopify("customers", five())
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    _, cursor = read(build(tmp_path, cdp_http))
    stale = {**cursor, "page_info": "expired", "max_updated_at": None, "started_at": None}
    fake.items.append(customer(6, "2024-05-07T10:00:00Z"))
    cdp_respx.get(CUSTOMERS).mock(
        side_effect=[httpx.Response(400, json={"errors": {"page_info": "Invalid value."}}), fake, fake]
    )
    keys, _ = read(build(tmp_path, cdp_http), cursor=stale)
    assert keys == ["1006"]


# -- rate limits and transient failures --------------------------------------------------------


def test_call_limit_header_slows_down_before_a_429(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    fake = FakeShopify("customers", five(), call_limits=["20/40", "36/40", "38/40"])
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    keys, _ = read(build(tmp_path, cdp_http))
    assert keys == ["1001", "1002", "1003", "1004", "1005"]
    # 20/40 is under 3/4 of the bucket: no wait. 36/40 is 6 over 30: 6 / 2 per second = 3 s before
    # the next request. 38/40 holds too, but no request follows.
    assert cdp_http.clock.sleeps == [3.0]  # type: ignore[attr-defined]


def test_call_limit_follows_the_plan_leak_rate(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeShopify("customers", five(), call_limits=["380/400", "10/400"])
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    read(build(tmp_path, cdp_http, calls_per_second=20, bucket_size=400))
    assert cdp_http.clock.sleeps == [4.0]  # type: ignore[attr-defined]  # (380 - 300) / 20


def test_429_with_retry_after(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeShopify("customers", five())
    throttled = httpx.Response(
        429, headers={"Retry-After": "2.0", CALL_LIMIT: "40/40"}, json={"errors": "Exceeded 2 calls per second."}
    )
    cdp_respx.get(CUSTOMERS).mock(side_effect=[fake, throttled, fake, fake])
    keys, _ = read(build(tmp_path, cdp_http))
    assert keys == ["1001", "1002", "1003", "1004", "1005"]
    assert 2.0 in cdp_http.clock.sleeps  # type: ignore[attr-defined]


def test_429_until_the_retries_run_out(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.get(CUSTOMERS).mock(return_value=httpx.Response(429, headers={"Retry-After": "1"}))
    with pytest.raises(RateLimited) as info:
        read(build(tmp_path, cdp_http))
    assert "connector 'shop'" in str(info.value)


def test_server_error_then_success(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeShopify("customers", five())
    cdp_respx.get(CUSTOMERS).mock(side_effect=[fake, httpx.Response(503), httpx.Response(502), fake, fake])
    keys, _ = read(build(tmp_path, cdp_http))
    assert keys == ["1001", "1002", "1003", "1004", "1005"]


def test_timeout_then_success(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeShopify("customers", five())
    cdp_respx.get(CUSTOMERS).mock(side_effect=[httpx.ReadTimeout("slow"), fake, fake, fake])
    keys, _ = read(build(tmp_path, cdp_http))
    assert keys == ["1001", "1002", "1003", "1004", "1005"]


# -- errors --------------------------------------------------------------------------------------


def test_malformed_page_stops_before_its_cursor(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeShopify("customers", five())
    good = fake

    def broken(request: httpx.Request) -> httpx.Response:
        answer = good(request)
        return httpx.Response(200, json={"customers": {"id": 1003}}, headers=answer.headers)  # not a list

    cdp_respx.get(CUSTOMERS).mock(side_effect=[good, broken])
    pages = build(tmp_path, cdp_http).stream("customers").read(None)
    first = next(pages)
    with pytest.raises(ResponseError) as info:
        next(pages)  # page 2 is malformed: it is never yielded, so its cursor is never committed
    assert [r.key for r in first.records] == ["1001", "1002"]
    message = str(info.value)
    assert "connector 'shop'" in message and "customers: Input should be a valid list" in message
    # the runner resumes from the last committed cursor once Shopify answers properly again
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    keys, _ = read(build(tmp_path, cdp_http), cursor=first.cursor)
    assert keys == ["1003", "1004", "1005"]


def test_body_that_is_not_json(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.get(CUSTOMERS).mock(return_value=httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(ResponseError) as info:
        read(build(tmp_path, cdp_http))
    assert "connector 'shop'" in str(info.value) and "not valid JSON" in str(info.value)


def test_auth_failure_names_the_connector(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.get(CUSTOMERS).mock(side_effect=FakeShopify("customers", five()))
    with pytest.raises(AuthError) as info:
        read(build(tmp_path, cdp_http, access_token="shpat_wrong_token"))
    message = str(info.value)
    assert "connector 'shop'" in message and "401" in message and "read_customers" in message
    assert "credentials" in message
    assert "401 Unauthorized: Shopify: [API] Invalid API key or access token" in message
    assert "shpat_wrong_token" not in message


def test_missing_scope_for_orders(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    cdp_respx.get(ORDERS).mock(
        return_value=httpx.Response(
            403, json={"errors": "[API] This action requires merchant approval for read_orders scope."}
        )
    )
    with pytest.raises(AuthError) as info:
        read(build(tmp_path, cdp_http), "orders")
    assert "connector 'shop'" in str(info.value) and "read_orders" in str(info.value)


def test_empty_result(cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path) -> None:
    fake = FakeShopify("customers", [])
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    pages = list(build(tmp_path, cdp_http).stream("customers").read(None))
    assert [r for p in pages for r in p.records] == []
    assert pages[-1].cursor == {"updated_at_min": None, "seen": {}}
    assert len(fake.requests) == 1


def test_plugin_registers_the_type(register_plugin: Any) -> None:
    plugins = register_plugin(cdp_shopify)
    assert plugins.registry.get("source", "shopify") is not None


def test_config_normalizes_the_shop_and_refuses_custom_domains() -> None:
    assert ShopifyConfig.model_validate({"shop": "https://My-Shop.myshopify.com/", "access_token": "t"}).shop == (
        "my-shop.myshopify.com"
    )
    assert ShopifyConfig.model_validate({"shop": "my-shop", "access_token": "t"}).shop == "my-shop.myshopify.com"
    with pytest.raises(ValueError, match="myshopify.com"):
        ShopifyConfig.model_validate({"shop": "shop.example.com", "access_token": "t"})
    with pytest.raises(ValueError, match="API version"):
        ShopifyConfig.model_validate({"shop": "my-shop", "access_token": "t", "api_version": "latest"})


# -- cursors committed before the source kept its mark with cdp_core.Incremental -------------------


def test_a_cursor_stored_by_earlier_versions_resumes(
    cdp_respx: respx.Router, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    """The layout is unchanged: a final and a mid-read cursor as stores already hold them still resume."""
    fake = FakeShopify("customers", five())
    cdp_respx.get(CUSTOMERS).mock(side_effect=fake)
    final = {"updated_at_min": "2024-05-04T09:59:00+00:00", "seen": {"1004": "2024-05-04T10:00:00+00:00"}}
    keys, cursor = read(build(tmp_path, cdp_http), cursor=final)
    assert keys == ["1005"] and fake.query_of(0)["updated_at_min"] == "2024-05-04T09:59:00+00:00"
    assert cursor == {"updated_at_min": "2024-05-05T09:59:00+00:00", "seen": {"1005": "2024-05-05T10:00:00+00:00"}}

    since = "2024-05-01T09:59:00+00:00"
    mid_read = {
        "updated_at_min": since,
        "seen": {"1001": "2024-05-01T10:00:00+00:00"},
        "fresh": {"1002": "2024-05-02T10:00:00+00:00"},
        "page_info": shopify_fake._encode({"updated_at_min": since, "last_id": 1002}),
        "max_updated_at": "2024-05-02T10:00:00+00:00",
        "started_at": "2024-05-03T12:00:00+00:00",  # the read began before 1004 and 1005 changed
    }
    keys, cursor = read(build(tmp_path, cdp_http), cursor=mid_read)
    assert keys == ["1003", "1004", "1005"]
    # the mark stops at the read's start minus the lookback; what was delivered after it stays seen
    assert cursor == {
        "updated_at_min": "2024-05-03T11:59:00+00:00",
        "seen": {k: f"2024-05-0{k[-1]}T10:00:00+00:00" for k in ("1004", "1005")},
    }


def test_one_malformed_customer_is_quarantined_the_others_stored(
    cdp_respx: respx.Router, cdp_http: HttpFactory, register_plugin: RegisterPlugin, tmp_path: Path, store_url: str
) -> None:
    """One customer that fails the model in the middle of a page: the others reach the destination, it
    is quarantined with its payload, the run succeeds, and the next run delivers nothing again."""
    items = [customer(n, f"2024-05-0{n}T10:00:00Z") for n in (1, 2, 3)]
    items[1]["orders_count"] = "many"  # not a number
    cdp_respx.get(CUSTOMERS).mock(side_effect=FakeShopify("customers", items))
    connector = f'[connectors.shop]\ntype = "shopify"\nshop = "{SHOP}"\naccess_token = "${{SHOPIFY_TOKEN}}"'
    runs = run_twice(
        tmp_path, connector, "shop.customers", register_plugin(cdp_shopify, extra=[kit_plugin]), store_url,
        env={"SHOPIFY_TOKEN": TOKEN}, services={"http": cdp_http},
    )  # fmt: skip
    assert runs.delivered == ["1001", "1003"]
    assert (runs.first.nodes["customers"].records_out, runs.first.nodes["customers"].rejected) == (2, 1)
    [entry] = runs.quarantined
    assert entry["payload"] == items[1] and entry["record_key"] == "1002"
    assert entry["reason"].startswith("shopify customers: an item of GET /admin/api/")
    assert "orders_count: Input should be a valid integer" in entry["reason"]
    assert runs.second.nodes["customers"].records_out == 0 and runs.redelivered == []
