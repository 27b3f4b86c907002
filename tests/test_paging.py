"""The paginators of cdp_core.http.paging against respx fakes (real httpx): pages, resumption, stop conditions.

Link-header and body-cursor paging are covered in test_http.py.
"""

from __future__ import annotations

import httpx
import pytest
import respx

from cdp_core.http import (
    HttpClient,
    HttpFactory,
    ResponseError,
    next_url_pages,
    offset_pages,
    page_number_pages,
)

pytest_plugins = ["cdp_core.testing"]

API = "https://api.vendor.example"
ITEMS = [f"c{n}" for n in range(5)]


def client(cdp_http: HttpFactory) -> HttpClient:
    return cdp_http.client(base_url=API, connector="crm")


def listing(request: httpx.Request) -> httpx.Response:
    """``?offset=&limit=`` or ``?page=&per_page=`` over ITEMS; ``total`` and ``pages`` in the body."""
    params = request.url.params
    if "page" in params:
        size = int(params.get("per_page", "2"))
        start = (int(params["page"]) - 1) * size
    else:
        size, start = int(params["limit"]), int(params["offset"])
    return httpx.Response(
        200, json={"data": ITEMS[start : start + size], "total": len(ITEMS), "pages": -(-len(ITEMS) // size)}
    )


# -- offset ---------------------------------------------------------------------------------------


def test_offset_pages_until_a_short_page(cdp_respx: respx.Router, cdp_http: HttpFactory) -> None:
    route = cdp_respx.get(f"{API}/contacts").mock(side_effect=listing)
    pages = list(offset_pages(client(cdp_http), "/contacts", items="data", limit=2, params={"sort": "id"}))
    assert [p.data["data"] for p in pages] == [["c0", "c1"], ["c2", "c3"], ["c4"]]
    assert [(p.cursor, p.next_cursor) for p in pages] == [(0, 2), (2, 4), (4, None)]
    assert dict(route.calls[1].request.url.params) == {"sort": "id", "limit": "2", "offset": "2"}


def test_offset_pages_stop_on_an_empty_page_and_resume(cdp_respx: respx.Router, cdp_http: HttpFactory) -> None:
    route = cdp_respx.get(f"{API}/contacts").mock(side_effect=listing)
    pages = list(offset_pages(client(cdp_http), "/contacts", items="data", limit=5))
    # a full page whose length says nothing: the next, empty, page ends the read
    assert [len(p.data["data"]) for p in pages] == [5, 0] and pages[-1].next_cursor is None
    resumed = list(offset_pages(client(cdp_http), "/contacts", items="data", limit=2, offset=4))
    assert [p.data["data"] for p in resumed] == [["c4"]]
    assert route.calls[-1].request.url.params["offset"] == "4"


def test_offset_pages_stop_at_the_total_the_body_names(cdp_respx: respx.Router, cdp_http: HttpFactory) -> None:
    route = cdp_respx.get(f"{API}/contacts").mock(side_effect=listing)
    pages = list(offset_pages(client(cdp_http), "/contacts", items="data", limit=5, total="total"))
    assert len(pages) == 1 and route.call_count == 1  # no request for an empty page


# -- page number ------------------------------------------------------------------------------------


def test_page_number_pages_until_a_short_page(cdp_respx: respx.Router, cdp_http: HttpFactory) -> None:
    route = cdp_respx.get(f"{API}/contacts").mock(side_effect=listing)
    pages = list(page_number_pages(client(cdp_http), "/contacts", items="data", size=2))
    assert [p.data["data"] for p in pages] == [["c0", "c1"], ["c2", "c3"], ["c4"]]
    assert [(p.cursor, p.next_cursor) for p in pages] == [(1, 2), (2, 3), (3, None)]
    assert dict(route.calls[0].request.url.params) == {"page": "1", "per_page": "2"}


def test_page_number_pages_by_total_pages_or_an_empty_page(cdp_respx: respx.Router, cdp_http: HttpFactory) -> None:
    route = cdp_respx.get(f"{API}/contacts").mock(side_effect=listing)
    by_count = list(page_number_pages(client(cdp_http), "/contacts", items="data", size=5, total_pages="pages"))
    assert len(by_count) == 1 and route.call_count == 1
    # no size sent (the API's default, 2 here): only the empty page 4 ends the read
    by_empty = list(page_number_pages(client(cdp_http), "/contacts", items="data", page=2))
    assert [p.data["data"] for p in by_empty] == [["c2", "c3"], ["c4"], []]


# -- next URL in the body -----------------------------------------------------------------------------


def test_next_url_pages_follow_the_body(cdp_respx: respx.Router, cdp_http: HttpFactory) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("p", "1"))
        following = {1: f"{API}/contacts?p=2", 2: "/contacts?p=3"}.get(n)  # absolute, then relative
        return httpx.Response(200, json={"data": [n], "links": {"next": following}})

    route = cdp_respx.get(f"{API}/contacts").mock(side_effect=page)
    pages = list(next_url_pages(client(cdp_http), "/contacts", next_url="links.next", params={"q": "x"}))
    assert [p.data["data"] for p in pages] == [[1], [2], [3]]
    assert pages[1].next_cursor == f"{API}/contacts?p=3" and pages[2].next_cursor is None
    assert dict(route.calls[1].request.url.params) == {"p": "2"}  # params go with the first request only
    resumed = list(next_url_pages(client(cdp_http), pages[0].next_cursor, next_url="links.next"))  # type: ignore[arg-type]
    assert [p.data["data"] for p in resumed] == [[2], [3]]


def test_next_url_pages_never_loop(cdp_respx: respx.Router, cdp_http: HttpFactory) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        following = "/contacts?p=2" if request.url.params.get("p") != "2" else "/contacts?p=1"
        return httpx.Response(200, json={"next": following})

    cdp_respx.get(f"{API}/contacts").mock(side_effect=page)
    pages = next_url_pages(client(cdp_http), "/contacts?p=1", next_url="next")
    assert next(pages).next_cursor == f"{API}/contacts?p=2"
    with pytest.raises(ResponseError, match="connector 'crm': the body's next URL points back to a page already read"):
        next(pages)


def test_next_url_pages_validate_before_yielding(cdp_respx: respx.Router, cdp_http: HttpFactory) -> None:
    from pydantic import BaseModel

    class Listing(BaseModel):
        data: list[int]

    cdp_respx.get(f"{API}/contacts").respond(200, json={"data": ["not a number"]})
    with pytest.raises(ResponseError, match=r"does not match Listing: data\.0"):
        list(next_url_pages(client(cdp_http), "/contacts", next_url="next", model=Listing))
