"""The HTTP layer (cdp_core.http): retries, limits, auth, redaction, errors, paging; all through respx."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import BaseModel, SecretStr

pytest.register_assert_rewrite("cdp_core.testing")

from cdp_core.http import (
    ApiKeyHeader,
    ApiKeyQuery,
    AuthError,
    BasicAuth,
    BearerAuth,
    ClientError,
    FakeClock,
    FileTokenStore,
    HttpFactory,
    LeakyBucketHeader,
    MemoryTokenStore,
    NetworkError,
    OAuth2RefreshAuth,
    OAuthTokens,
    RateLimit,
    RateLimited,
    ResponseError,
    RetryPolicy,
    ServerError,
    Timeouts,
    client_for,
    cursor_pages,
    default_factory,
    link_pages,
)
from cdp_core.runner import Runner
from cdp_core.secrets import Redactor
from cdp_core.testing import kit_plugin, load_test_plugins, make_context

pytest_plugins = ["cdp_core.testing"]

API = "https://api.vendor.example"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def factory(clock: FakeClock) -> HttpFactory:
    return HttpFactory(sleep=clock.sleep, clock=clock)


@pytest.fixture
def mock() -> respx.Router:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


def client(factory: HttpFactory, **options: object):  # type: ignore[no-untyped-def]
    return factory.client(base_url=API, connector=str(options.pop("connector", "crm")), **options)  # type: ignore[arg-type]


# -- retries ----------------------------------------------------------------------------------


def test_429_retry_after_seconds_is_honoured(factory: HttpFactory, clock: FakeClock, mock: respx.Router) -> None:
    route = mock.get(f"{API}/items").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={"ok": True})]
    )
    assert client(factory).get_json("/items") == {"ok": True}
    assert route.call_count == 2
    assert clock.sleeps == [7.0]


def test_429_retry_after_http_date_is_honoured(factory: HttpFactory, clock: FakeClock, mock: respx.Router) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    mock.get(f"{API}/items").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200, json={})]
    )
    client(factory).get("/items")
    assert len(clock.sleeps) == 1 and 27 <= clock.sleeps[0] <= 30


def test_retry_after_is_capped_and_holds_the_whole_connector(
    factory: HttpFactory, clock: FakeClock, mock: respx.Router
) -> None:
    mock.get(f"{API}/a").mock(side_effect=[httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200)])
    mock.get(f"{API}/b").respond(200)
    first = client(factory, retry=RetryPolicy(retry_after_max=20))
    first.get("/a")
    assert clock.sleeps == [20.0]
    # The hold was set for every client of the connector: it has passed, so no more waiting.
    client(factory).get("/b")
    assert clock.sleeps == [20.0]


def test_429_hold_delays_other_clients_of_the_connector(clock: FakeClock, mock: respx.Router) -> None:
    factory = HttpFactory(sleep=lambda s: None, clock=clock)  # sleeps do not move this clock
    mock.get(f"{API}/a").mock(side_effect=[httpx.Response(429, headers={"Retry-After": "5"}), httpx.Response(200)])
    client(factory).get("/a")
    limiter = factory.limiter("crm")
    assert limiter.reserve() == pytest.approx(5.0)  # the next request of "crm" waits for the hold
    assert factory.limiter("other").reserve() == 0.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_then_success(factory: HttpFactory, clock: FakeClock, mock: respx.Router, status: int) -> None:
    route = mock.get(f"{API}/items").mock(side_effect=[httpx.Response(status), httpx.Response(200, json=[1])])
    assert client(factory).get_json("/items") == [1]
    assert route.call_count == 2
    assert len(clock.sleeps) == 1 and 0 <= clock.sleeps[0] <= 1.0  # full jitter: random(0, backoff)


def test_backoff_is_exponential_with_full_jitter(clock: FakeClock, mock: respx.Router) -> None:
    factory = HttpFactory(sleep=clock.sleep, clock=clock, random=lambda: 0.999)
    mock.get(f"{API}/items").mock(side_effect=[httpx.Response(503)] * 4 + [httpx.Response(200)])
    client(factory, retry=RetryPolicy(backoff=1.0, backoff_max=5.0)).get("/items")
    assert clock.sleeps == pytest.approx([0.999, 1.998, 3.996, 4.995])


def test_timeout_then_success(factory: HttpFactory, clock: FakeClock, mock: respx.Router) -> None:
    route = mock.get(f"{API}/items").mock(side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json={})])
    client(factory).get("/items")
    assert route.call_count == 2 and len(clock.sleeps) == 1


def test_connection_error_then_success(factory: HttpFactory, mock: respx.Router) -> None:
    route = mock.get(f"{API}/items").mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200)])
    assert client(factory).get("/items").status_code == 200
    assert route.call_count == 2


def test_exhausted_retries_raise_a_clear_server_error(
    factory: HttpFactory, clock: FakeClock, mock: respx.Router
) -> None:
    route = mock.get(f"{API}/items").respond(503)
    with pytest.raises(ServerError) as info:
        client(factory, connector="shop").get("/items", params={"api_key": "k-123456", "email": "a@b.example"})
    error = info.value
    assert route.call_count == 5 and len(clock.sleeps) == 4
    assert error.status == 503 and error.attempts == 5 and error.connector == "shop"
    text = str(error)
    assert "connector 'shop'" in text and f"GET {API}/items" in text and "after 5 attempts" in text
    assert "k-123456" not in text and "a@b.example" not in text  # never the query string


def test_exhausted_rate_limit_raises_rate_limited(factory: HttpFactory, mock: respx.Router) -> None:
    mock.get(f"{API}/items").respond(429, headers={"Retry-After": "1"})
    with pytest.raises(RateLimited, match="rate_limit"):
        client(factory).get("/items")


def test_connection_errors_exhausted_raise_network_error(factory: HttpFactory, mock: respx.Router) -> None:
    mock.get(f"{API}/items").mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(NetworkError, match="connection refused") as info:
        client(factory).get("/items")
    assert info.value.attempts == 5 and info.value.status is None


def test_timeouts_exhausted_say_so(factory: HttpFactory, mock: respx.Router) -> None:
    mock.get(f"{API}/items").mock(side_effect=httpx.ReadTimeout("read timed out"))
    with pytest.raises(NetworkError, match="timed out") as info:
        client(factory).get("/items")
    assert info.value.timed_out


def test_max_wait_bounds_the_sleeping(factory: HttpFactory, clock: FakeClock, mock: respx.Router) -> None:
    mock.get(f"{API}/items").respond(503, headers={"Retry-After": "4"})
    with pytest.raises(ServerError):
        client(factory, retry=RetryPolicy(max_attempts=100, max_wait=10)).get("/items")
    assert clock.sleeps == [4.0, 4.0]


def test_total_timeout_bounds_the_call(factory: HttpFactory, clock: FakeClock, mock: respx.Router) -> None:
    mock.get(f"{API}/items").respond(503, headers={"Retry-After": "4"})
    with pytest.raises(ServerError):
        client(factory, timeout=Timeouts(total=9), retry=RetryPolicy(max_attempts=100, max_wait=100)).get("/items")
    assert clock.sleeps == [4.0, 4.0]


def test_post_is_retried_only_when_marked_idempotent(factory: HttpFactory, mock: respx.Router) -> None:
    route = mock.post(f"{API}/search").mock(side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(200)])
    with pytest.raises(ServerError):
        client(factory).post("/search", json={"q": 1})
    assert route.call_count == 1
    client(factory).post("/search", json={"q": 1}, idempotent=True)
    assert route.call_count == 3


def test_post_is_retried_when_it_never_reached_the_server(factory: HttpFactory, mock: respx.Router) -> None:
    route = mock.post(f"{API}/orders").mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(201)])
    assert client(factory).post("/orders", json={}).status_code == 201
    assert route.call_count == 2


def test_post_429_is_not_retried_but_holds_the_connector(clock: FakeClock, mock: respx.Router) -> None:
    factory = HttpFactory(sleep=lambda s: None, clock=clock)
    route = mock.post(f"{API}/orders").respond(429, headers={"Retry-After": "8"})
    with pytest.raises(RateLimited):
        client(factory).post("/orders", json={})
    assert route.call_count == 1
    assert factory.limiter("crm").reserve() == pytest.approx(8.0)


def test_timeouts_reach_httpx(factory: HttpFactory, mock: respx.Router) -> None:
    route = mock.get(f"{API}/items").respond(200)
    http = client(factory, timeout=Timeouts(connect=3, read=20, write=5, pool=1, total=None))
    http.get("/items")
    assert route.calls.last.request.extensions["timeout"] == {"connect": 3, "read": 20, "write": 5, "pool": 1}
    http.get("/items", timeout=7)
    assert route.calls.last.request.extensions["timeout"] == {"connect": 7, "read": 7, "write": 7, "pool": 1}
    default = client(factory)
    default.get("/items")
    assert route.calls.last.request.extensions["timeout"] == {"connect": 10, "read": 60, "write": 60, "pool": 30}


def test_other_4xx_is_not_retried(factory: HttpFactory, mock: respx.Router) -> None:
    route = mock.get(f"{API}/missing").respond(404)
    with pytest.raises(ClientError, match="404"):
        client(factory).get("/missing")
    assert route.call_count == 1
    assert client(factory).get("/missing", allow_status={404}).status_code == 404


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_names_the_connector(factory: HttpFactory, mock: respx.Router, status: int) -> None:
    route = mock.get(f"{API}/me").respond(status)
    with pytest.raises(AuthError) as info:
        client(factory, connector="hubspot", auth=BearerAuth("wrong-token")).get("/me")
    assert route.call_count == 1
    text = str(info.value)
    assert "connector 'hubspot'" in text and str(status) in text and "credentials" in text
    assert "wrong-token" not in text


def test_auth_helpers_set_headers_and_params(factory: HttpFactory, mock: respx.Router) -> None:
    route = mock.get(f"{API}/x").respond(200)
    client(factory, auth=BearerAuth(SecretStr("tok-abc"))).get("/x")
    assert route.calls.last.request.headers["Authorization"] == "Bearer tok-abc"
    client(factory, auth=ApiKeyHeader("X-Shopify-Access-Token", "shpat_1")).get("/x")
    assert route.calls.last.request.headers["X-Shopify-Access-Token"] == "shpat_1"
    client(factory, auth=ApiKeyQuery("api_key", "qk-9")).get("/x", params={"a": "1"})
    assert route.calls.last.request.url.params["api_key"] == "qk-9"
    client(factory, auth=BasicAuth("anystring", SecretStr("key-us21"))).get("/x")
    assert route.calls.last.request.headers["Authorization"] == httpx.BasicAuth("anystring", "key-us21")._auth_header


TOKEN_URL = "https://auth.vendor.example/oauth/token"


def _token_endpoint(mock: respx.Router, *, rotate: bool = True) -> respx.Route:
    count = {"n": 0}

    def issue(request: httpx.Request) -> httpx.Response:
        count["n"] += 1
        body = {"access_token": f"access-{count['n']}", "expires_in": 1800}
        if rotate:
            body["refresh_token"] = f"refresh-{count['n'] + 1}"
        return httpx.Response(200, json=body)

    return mock.post(TOKEN_URL).mock(side_effect=issue)


def test_oauth2_refresh_on_401_saves_the_rotated_refresh_token(factory: HttpFactory, mock: respx.Router) -> None:
    tokens = _token_endpoint(mock)
    api = mock.get(f"{API}/me").mock(
        side_effect=[httpx.Response(200), httpx.Response(401), httpx.Response(200, json={"id": 1})]
    )
    store = MemoryTokenStore()
    auth = OAuth2RefreshAuth(
        TOKEN_URL, client_id="cid", client_secret="csecret", refresh_token="refresh-1", store=store
    )
    http = client(factory, auth=auth)
    http.get("/me")  # no access token yet: refreshed first
    assert api.calls[0].request.headers["Authorization"] == "Bearer access-1"
    form = dict(httpx.QueryParams(tokens.calls[0].request.content.decode()))
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-1",
        "client_id": "cid",
        "client_secret": "csecret",
    }
    assert store.tokens is not None and store.tokens.refresh_token == "refresh-2"

    assert http.get_json("/me") == {"id": 1}  # 401: refreshed once with the ROTATED token, sent again
    assert [c.request.headers["Authorization"] for c in api.calls] == ["Bearer access-1"] * 2 + ["Bearer access-2"]
    assert dict(httpx.QueryParams(tokens.calls[1].request.content.decode()))["refresh_token"] == "refresh-2"
    assert store.tokens.refresh_token == "refresh-3" and store.tokens.access_token == "access-2"
    assert auth.refreshes == 2


def test_oauth2_rotated_token_survives_a_restart(factory: HttpFactory, mock: respx.Router, tmp_path: Path) -> None:
    _token_endpoint(mock)
    mock.get(f"{API}/me").respond(200)
    path = tmp_path / "tokens" / "crm.json"
    first = OAuth2RefreshAuth(
        TOKEN_URL, client_id="c", client_secret="s", refresh_token="refresh-1", store=FileTokenStore(path)
    )
    client(factory, auth=first).get("/me")
    assert json.loads(path.read_text())["refresh_token"] == "refresh-2"
    assert path.stat().st_mode & 0o777 == 0o600
    # A new process with the config's (now stale) refresh token uses the saved one.
    again = OAuth2RefreshAuth(
        TOKEN_URL, client_id="c", client_secret="s", refresh_token="refresh-1", store=FileTokenStore(path)
    )
    assert again.tokens.refresh_token == "refresh-2"


def test_oauth2_refreshes_only_once_per_request(factory: HttpFactory, mock: respx.Router) -> None:
    tokens = _token_endpoint(mock, rotate=False)
    mock.get(f"{API}/me").respond(401)
    store = MemoryTokenStore(OAuthTokens(access_token="old", refresh_token="r-1", expires_at=time.time() + 3600))
    auth = OAuth2RefreshAuth(TOKEN_URL, client_id="c", client_secret="s", store=store)
    with pytest.raises(AuthError, match="connector 'crm'"):
        client(factory, auth=auth).get("/me")
    assert tokens.call_count == 1


def test_oauth2_refresh_refused_is_an_auth_error(factory: HttpFactory, mock: respx.Router) -> None:
    mock.post(TOKEN_URL).respond(400, json={"error": "invalid_grant"})
    auth = OAuth2RefreshAuth(
        TOKEN_URL, client_id="c", client_secret="s", refresh_token="r-revoked", client_auth="basic"
    )
    with pytest.raises(AuthError) as info:
        client(factory, connector="shop", auth=auth).get("/me")
    text = str(info.value)
    assert "connector 'shop'" in text and "invalid_grant" in text and "authorize" in text
    assert "r-revoked" not in text


def test_oauth2_refreshes_an_expired_access_token(factory: HttpFactory, mock: respx.Router) -> None:
    tokens = _token_endpoint(mock)
    mock.get(f"{API}/me").respond(200)
    store = MemoryTokenStore(OAuthTokens(access_token="stale", refresh_token="r-1", expires_at=time.time() - 1))
    client(factory, auth=OAuth2RefreshAuth(TOKEN_URL, client_id="c", client_secret="s", store=store)).get("/me")
    assert tokens.call_count == 1


# -- limits -------------------------------------------------------------------------------------


def test_rate_limit_spaces_requests(factory: HttpFactory, clock: FakeClock, mock: respx.Router) -> None:
    sent: list[float] = []
    mock.get(f"{API}/items").mock(side_effect=lambda request: sent.append(clock()) or httpx.Response(200))
    http = client(factory, rate_limit=RateLimit(5, per=1.0))
    for _ in range(6):
        http.get("/items")
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert gaps == pytest.approx([0.2] * 5)


def test_rate_limit_burst_and_sharing(factory: HttpFactory, clock: FakeClock, mock: respx.Router) -> None:
    sent: list[float] = []
    mock.get(f"{API}/items").mock(side_effect=lambda request: sent.append(clock()) or httpx.Response(200))
    one = client(factory, rate_limit=RateLimit(190, per=10.0, burst=3))
    two = client(factory)  # same connector: same limiter
    for http in (one, two, one, two, one):
        http.get("/items")
    start = sent[0]
    assert [round(t - start, 4) for t in sent] == [0, 0, 0, round(10 / 190, 4), round(20 / 190, 4)]


def test_concurrency_cap_is_shared_by_the_connector_clients(mock: respx.Router) -> None:
    factory = HttpFactory()
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def slow(request: httpx.Request) -> httpx.Response:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return httpx.Response(200)

    mock.get(f"{API}/items").mock(side_effect=slow)
    clients = [client(factory, max_concurrency=2) for _ in range(3)]
    threads = [threading.Thread(target=clients[n % 3].get, args=("/items",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state["max"] == 2
    assert factory.limiter("crm").max_in_flight == 2


def test_leaky_bucket_header_slows_down_before_a_429(
    factory: HttpFactory, clock: FakeClock, mock: respx.Router
) -> None:
    mock.get(f"{API}/customers.json").mock(
        side_effect=[
            httpx.Response(200, headers={"X-Shopify-Shop-Api-Call-Limit": "10/40"}),
            httpx.Response(200, headers={"X-Shopify-Shop-Api-Call-Limit": "36/40"}),
            httpx.Response(200, headers={"X-Shopify-Shop-Api-Call-Limit": "31/40"}),
        ]
    )
    http = client(factory, connector="shop", rate_policy=LeakyBucketHeader())
    http.get("/customers.json")
    http.get("/customers.json")
    assert clock.sleeps == []
    http.get("/customers.json")  # the bucket was 36/40 > 75 %: wait (36 - 30) / 2 s
    assert clock.sleeps == [3.0]
    policy = LeakyBucketHeader(threshold=0.5)
    assert policy(httpx.Response(200, headers={"X-Shopify-Shop-Api-Call-Limit": "32/40"})) == 6.0
    assert policy(httpx.Response(200)) is None


# -- logging and redaction ----------------------------------------------------------------------


def test_logs_redact_secrets(clock: FakeClock, mock: respx.Router, caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor()
    redactor.add("acct-987654")  # a value from connectors.toml (${ENV}), here in the URL path
    factory = HttpFactory(redactor=redactor, sleep=clock.sleep, clock=clock)
    mock.get(url__startswith=f"{API}/accounts/").mock(side_effect=[httpx.Response(503), httpx.Response(200)])
    caplog.set_level(logging.DEBUG)
    http = client(factory, auth=BearerAuth("bearer-secret-1"))
    http.get("/accounts/acct-987654/items", params={"api_key": "key-secret-2", "access_token": "tok-3xyz", "q": "ok"})
    text = caplog.text
    for secret in ("bearer-secret-1", "key-secret-2", "tok-3xyz", "acct-987654"):
        assert secret not in text
    assert "GET https://api.vendor.example/accounts/***/items?api_key=***&access_token=***&q=ok -> 503" in text
    assert "(attempt 1/5)" in text and "-> 200 in" in text
    # The auth's own secret joins the redactor: it is blanked anywhere else too.
    assert redactor("header was bearer-secret-1") == "header was ***"


def test_http_error_messages_redact_known_values(factory: HttpFactory, mock: respx.Router) -> None:
    factory.redactor.add("tenant-secret-77")
    mock.get(url__startswith=API).respond(404)
    with pytest.raises(ClientError) as info:
        client(factory).get("/tenants/tenant-secret-77")
    assert "tenant-secret-77" not in str(info.value)


# -- bodies -------------------------------------------------------------------------------------


class Contact(BaseModel):
    id: str
    email: str | None = None


class ContactsPage(BaseModel):
    results: list[Contact]


def test_malformed_json_is_a_response_error(factory: HttpFactory, mock: respx.Router) -> None:
    mock.get(f"{API}/contacts").respond(200, text="<html>oops", headers={"Content-Type": "text/html"})
    with pytest.raises(ResponseError) as info:
        client(factory, connector="hubspot").get_json("/contacts", params={"token": "t-0000"})
    text = str(info.value)
    assert "connector 'hubspot'" in text and "not valid JSON" in text and f"GET {API}/contacts" in text
    assert "text/html" in text and "t-0000" not in text


def test_validation_error_names_the_field(factory: HttpFactory, mock: respx.Router) -> None:
    mock.get(f"{API}/contacts").respond(200, json={"results": [{"id": "1"}, {"email": "secret.person@example.com"}]})
    with pytest.raises(ResponseError) as info:
        client(factory, connector="hubspot").get_json("/contacts", model=ContactsPage)
    text = str(info.value)
    assert "connector 'hubspot'" in text and "ContactsPage" in text and "results.1.id: Field required" in text
    assert "secret.person@example.com" not in text  # never the values
    assert info.value.response is not None


def test_response_json_validates_generic_types(factory: HttpFactory, mock: respx.Router) -> None:
    mock.get(f"{API}/contacts").respond(200, json=[{"id": "1"}])
    assert client(factory).get_json("/contacts", model=list[Contact]) == [Contact(id="1")]


# -- paging -------------------------------------------------------------------------------------


def test_link_header_pagination(factory: HttpFactory, mock: respx.Router) -> None:
    url = f"{API}/admin/api/2024-01/customers.json"

    def page(request: httpx.Request) -> httpx.Response:
        info = request.url.params.get("page_info")
        nxt = {None: "p2", "p2": "p3", "p3": None}[info]
        headers = {"Link": f'<{url}?limit=2&page_info={nxt}>; rel="next"'} if nxt else {}
        if info:
            headers["Link"] = f'<{url}?limit=2&page_info=p1>; rel="previous"' + (
                ", " + headers["Link"] if "Link" in headers else ""
            )
        return httpx.Response(200, json={"customers": [info or "p1"]}, headers=headers)

    route = mock.get(url).mock(side_effect=page)
    pages = list(link_pages(client(factory), url, params={"limit": 2, "updated_at_min": "2024-01-01"}))
    assert [p.json()["customers"] for p in pages] == [["p1"], ["p2"], ["p3"]]
    first, second = route.calls[0].request.url.params, route.calls[1].request.url.params
    assert first["updated_at_min"] == "2024-01-01"
    assert dict(second) == {"limit": "2", "page_info": "p2"}  # only the link's own query after page 1


def test_cursor_pagination_in_query_and_json(factory: HttpFactory, mock: respx.Router) -> None:
    def contacts(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        nxt = {None: "10", "10": "20", "20": None}[after]
        return httpx.Response(200, json={"results": [after], **({"paging": {"next": {"after": nxt}}} if nxt else {})})

    mock.get(f"{API}/contacts").mock(side_effect=contacts)
    pages = list(cursor_pages(client(factory), "/contacts", next_cursor="paging.next.after", params={"limit": 1}))
    assert [(p.cursor, p.next_cursor) for p in pages] == [(None, "10"), ("10", "20"), ("20", None)]
    resumed = list(cursor_pages(client(factory), "/contacts", next_cursor="paging.next.after", cursor="10"))
    assert [p.data["results"] for p in resumed] == [["10"], ["20"]]

    def search(request: httpx.Request) -> httpx.Response:
        after = json.loads(request.content).get("after")
        nxt = {None: "a"}.get(after)
        return httpx.Response(200, json={"results": [after], **({"paging": {"next": {"after": nxt}}} if nxt else {})})

    route = mock.post(f"{API}/search").mock(side_effect=search)
    found = list(
        cursor_pages(
            client(factory),
            "/search",
            method="POST",
            in_json=True,
            json={"limit": 1},
            idempotent=True,
            next_cursor="paging.next.after",
        )
    )
    assert [p.data["results"] for p in found] == [[None], ["a"]]
    assert json.loads(route.calls[1].request.content) == {"limit": 1, "after": "a"}


def test_cursor_pagination_stops_on_a_repeated_cursor(factory: HttpFactory, mock: respx.Router) -> None:
    mock.get(f"{API}/contacts").respond(200, json={"next": "same"})
    with pytest.raises(ResponseError, match="same next cursor"):
        list(cursor_pages(client(factory), "/contacts", next_cursor="next"))


# -- wiring -------------------------------------------------------------------------------------


def test_runner_hands_each_connector_a_bound_factory(tmp_path: Path) -> None:
    from cdp_core.config import load_config

    path = tmp_path / "connectors.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/s.sqlite"\n\n[connectors.src]\ntype = "list_source"\nstreams = {{people = {{records = []}}}}\n'
    )
    config = load_config(path, load_test_plugins(kit_plugin), env={})
    runner = Runner(config, load_test_plugins(kit_plugin))
    try:
        http = runner.context("src").services["http"]
        assert isinstance(http, HttpFactory) and http.connector == "src" and http.redactor is config.redact
        assert client_for(runner.context("src")).connector == "src"
        # Clients of one connector share limits across contexts built by the runner.
        assert runner.context("src").services["http"].limiter("src") is http.limiter("src")
        given = HttpFactory()
        with_given = Runner(config, load_test_plugins(kit_plugin), runner.system, services={"http": given})
        bound = with_given.context("src").services["http"]
        assert bound.connector == "src" and bound.limiter("src") is given.limiter("src")
    finally:
        runner.system.engine.dispose()


def test_cdp_http_fixture_never_sleeps_and_is_the_default(
    cdp_http: HttpFactory, cdp_respx: respx.Router, tmp_path: Path
) -> None:
    assert default_factory() is cdp_http
    cdp_respx.get(f"{API}/x").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "30"}), httpx.Response(200)]
    )
    started = time.monotonic()
    client_for(make_context(tmp_path, "shop"), base_url=API).get("/x")
    assert time.monotonic() - started < 5
    assert cdp_http.clock.sleeps == [30.0]  # type: ignore[attr-defined]


def test_explained_keeps_the_context_and_can_change_the_class() -> None:
    from cdp_core.http.errors import AuthError, ClientError

    original = ClientError("HTTP 400", connector="ads", method="POST", url="https://graph.example/x", status=400, attempts=2)
    explained = original.explained("OAuthException code 190: token expired", AuthError)
    assert isinstance(explained, AuthError)
    assert (explained.connector, explained.method, explained.url, explained.status, explained.attempts) == (
        "ads", "POST", "https://graph.example/x", 400, 2,
    )
    assert "token expired" in str(explained) and "credentials" in str(explained)
    assert type(original.explained("more")) is ClientError


def test_server_time_reads_the_date_header_else_the_clock() -> None:
    from datetime import UTC, datetime

    from cdp_core.http import server_time

    fallback = datetime(2030, 1, 1, tzinfo=UTC)
    dated = httpx.Response(200, headers={"Date": "Wed, 01 May 2024 10:00:00 GMT"})
    assert server_time(dated, now=lambda: fallback) == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    for headers in ({}, {"Date": "yesterday"}):
        assert server_time(httpx.Response(200, headers=headers), now=lambda: fallback) == fallback
