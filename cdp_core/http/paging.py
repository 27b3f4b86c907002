"""Pagination helpers for the common styles: a cursor or a next URL in the body, the
``Link: <...>; rel="next"`` header, an offset, a page number.

All are generators of pages that leave the *stream's* cursor to the stream:
each page says which cursor (token, URL, offset, page) fetched it and which
fetches the next one, so a stream can yield ``Page(records, cursor=...)`` that
resumes right after it. Each stops on an empty page or when there is no next
one, and raises :class:`ResponseError` rather than loop when the API sends a
page it already sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from cdp_core.fieldpaths import json_path
from cdp_core.http.client import HttpClient
from cdp_core.http.errors import ResponseError, error_url, response_json

T = TypeVar("T")


def next_link(response: httpx.Response, rel: str = "next") -> str | None:
    """The URL of the ``Link`` header entry with ``rel`` (``"next"``), or None."""
    link = response.links.get(rel)
    return link.get("url") if link else None


def link_pages(
    client: HttpClient, url: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any
) -> Iterator[httpx.Response]:
    """GET ``url``, then each ``rel="next"`` link until there is none; yield every response.

    ``params`` go with the first request only: the next link carries its own query
    (Shopify refuses other parameters next to ``page_info``). To resume a read,
    start from a saved next link: ``link_pages(client, saved_url)``.
    """
    current: str | None = url
    first = True
    seen: set[str] = set()
    while current is not None:
        response = client.get(current, params=params if first else None, **kwargs)
        yield response
        first = False
        seen.add(str(response.request.url))
        current = next_link(response)
        if current is not None and str(response.request.url.join(current)) in seen:
            raise _loop(client, response, "the Link header points back to a page already read")


@dataclass(frozen=True)
class CursorPage(Generic[T]):
    """One page: the body, the cursor that fetched it, and the next one (None on the last page).

    The cursor is a token or a URL (:func:`cursor_pages`, :func:`next_url_pages`), or an
    offset or page number (:func:`offset_pages`, :func:`page_number_pages`).
    """

    data: T
    cursor: str | int | None
    next_cursor: str | int | None


BodyPath = str | Callable[[Any], Any]
"""Where a value is in a body: a dotted path (``"paging.next.after"``) or a function of the body."""


def _reader(spec: BodyPath) -> Callable[[Any], Any]:
    return spec if callable(spec) else (lambda body: json_path(body, spec))


def cursor_pages(
    client: HttpClient,
    url: str,
    *,
    next_cursor: BodyPath,
    cursor_param: str = "after",
    cursor: str | None = None,
    method: str = "GET",
    in_json: bool = False,
    params: Mapping[str, Any] | None = None,
    json: Mapping[str, Any] | None = None,
    model: Any = None,
    **kwargs: Any,
) -> Iterator[CursorPage[Any]]:
    """Request pages while the body names a next cursor (HubSpot ``paging.next.after``, Typeform, Meta).

    :param next_cursor: a dotted path into the body (``"paging.next.after"``) or a
        function of the body; a missing or empty value ends the pages.
    :param cursor_param: the query parameter (or JSON key with ``in_json``) the cursor goes in.
    :param cursor: the cursor to start from (a saved one, to resume); None: the first page.
    :param in_json: put the cursor in the JSON body (a POST search) instead of the query.
    :param model: validate each body with it (:func:`response_json`): a malformed page
        raises :class:`ResponseError` before anything of it is yielded.
    Other keyword arguments go to :meth:`HttpClient.request` (``idempotent=True`` for a POST search).
    """
    extract = _reader(next_cursor)
    while True:
        query, body = dict(params or {}), dict(json) if json is not None else None
        if cursor is not None:
            if in_json:
                body = {**(body or {}), cursor_param: cursor}
            else:
                query[cursor_param] = cursor
        response = client.request(method, url, params=query or None, json=body, **kwargs)
        data = response_json(response, model, connector=client.connector)
        following = extract(data)
        following = str(following) if following not in (None, "") else None
        yield CursorPage(data, cursor, following)
        if following is None:
            return
        if following == cursor:
            raise _loop(client, response, f"the API gave the same next cursor again ({cursor_param})")
        cursor = following


def next_url_pages(
    client: HttpClient,
    url: str,
    *,
    next_url: BodyPath,
    params: Mapping[str, Any] | None = None,
    model: Any = None,
    **kwargs: Any,
) -> Iterator[CursorPage[Any]]:
    """GET ``url``, then the next URL the body names (``"paging.next"``, ``"links.next.href"``) until there is none.

    :param next_url: a dotted path into the body or a function of the body; a missing or
        empty value ends the pages. A relative URL is resolved against the page's own.
    :param params: sent with the first request only: the next URL carries its own query.
    :param model: validate each body with it before the page is yielded.
    Each page's ``cursor`` is the URL that fetched it: resume with ``next_url_pages(client, saved)``.
    """
    extract = _reader(next_url)
    current: str | None = url
    query = params
    seen: set[str] = set()
    while current is not None:
        response = client.get(current, params=query, **kwargs)
        query = None
        fetched = str(response.request.url)
        seen.add(fetched)
        data = response_json(response, model, connector=client.connector)
        following = extract(data)
        following = str(response.request.url.join(str(following))) if following not in (None, "") else None
        if following is not None and following in seen:
            raise _loop(client, response, "the body's next URL points back to a page already read")
        yield CursorPage(data, current, following)
        current = following


def offset_pages(
    client: HttpClient,
    url: str,
    *,
    items: BodyPath,
    limit: int,
    offset: int = 0,
    limit_param: str = "limit",
    offset_param: str = "offset",
    total: BodyPath | None = None,
    has_more: BodyPath | None = None,
    next_offset: BodyPath | None = None,
    params: Mapping[str, Any] | None = None,
    model: Any = None,
    **kwargs: Any,
) -> Iterator[CursorPage[Any]]:
    """Request ``limit`` items at a time from ``offset`` on, until a page is empty or short.

    :param items: where the page's list is in the body (a dotted path or a function).
    :param limit: items per request; a page with fewer is the last.
    :param offset: where to start (a saved ``next_cursor``, to resume).
    :param total: where the body says how many items there are (``"total_items"``), if it
        does: the pages stop at that count without asking for an empty one.
    :param has_more: where the body says whether more items follow (Pipedrive's
        ``"additional_data.pagination.more_items_in_collection"``): it alone decides, so a page
        shorter than ``limit`` (an API that caps it) goes on while the body says more follow.
    :param next_offset: where the body gives the next offset (``"additional_data.pagination.next_start"``);
        unset or absent: ``offset + items on the page``.
    :param model: validate each body with it before the page is yielded.
    Offsets are safe only when the order is stable: prefer a mark (:class:`cdp_core.Incremental`).
    """
    read_total = _reader(total) if total is not None else None
    read_more = _reader(has_more) if has_more is not None else None
    read_next = _reader(next_offset) if next_offset is not None else None

    def following(data: Any, at: int, count: int) -> int | None:
        known = read_total(data) if read_total is not None else None
        if read_more is not None:  # the body says: a short page (an API capping the limit) is not the last
            last = count == 0 or not read_more(data)
        else:
            last = count == 0 or count < limit or (known is not None and at + count >= int(known))
        given = read_next(data) if read_next is not None else None
        return None if last else int(given) if given is not None else at + count

    query = {**(params or {}), limit_param: limit}
    return _numbered_pages(client, url, items, offset, lambda at: {**query, offset_param: at}, following, model, kwargs)


def page_number_pages(
    client: HttpClient,
    url: str,
    *,
    items: BodyPath,
    page: int = 1,
    page_param: str = "page",
    size: int | None = None,
    size_param: str = "per_page",
    total_pages: BodyPath | None = None,
    params: Mapping[str, Any] | None = None,
    model: Any = None,
    **kwargs: Any,
) -> Iterator[CursorPage[Any]]:
    """Request page ``page``, ``page + 1``, ... until a page is empty, short, or the last one the body names.

    :param items: where the page's list is in the body (a dotted path or a function).
    :param page: the first page to ask for (1 for most APIs; a saved ``next_cursor``, to resume).
    :param size: items per page, sent as ``size_param``; a page with fewer is the last.
        None: the API's default, and only an empty page (or ``total_pages``) ends the pages.
    :param total_pages: where the body says how many pages there are (``"meta.pages"``), if it does.
    :param model: validate each body with it before the page is yielded.
    """
    read_pages = _reader(total_pages) if total_pages is not None else None

    def following(data: Any, at: int, count: int) -> int | None:
        pages = read_pages(data) if read_pages is not None else None
        last = count == 0 or (size is not None and count < size) or (pages is not None and at >= int(pages))
        return None if last else at + 1

    query = {**(params or {}), **({size_param: size} if size is not None else {})}
    return _numbered_pages(client, url, items, page, lambda at: {**query, page_param: at}, following, model, kwargs)


def _numbered_pages(
    client: HttpClient,
    url: str,
    items: BodyPath,
    start: int,
    query: Callable[[int], dict[str, Any]],
    following: Callable[[Any, int, int], int | None],
    model: Any,
    kwargs: dict[str, Any],
) -> Iterator[CursorPage[Any]]:
    """Offsets and page numbers: request ``query(at)``; ``following(body, at, item count)`` is the next ``at`` or None."""
    read_items = _reader(items)
    at: int | None = start
    while at is not None:
        response = client.get(url, params=query(at), **kwargs)
        data = response_json(response, model, connector=client.connector)
        after = following(data, at, len(read_items(data) or []))
        yield CursorPage(data, at, after)
        at = after


def _loop(client: HttpClient, response: httpx.Response, detail: str) -> ResponseError:
    request = response.request
    return ResponseError(
        detail, connector=client.connector, method=request.method, url=error_url(request.url), response=response
    )
