"""Two small pagination helpers: a cursor in the body, and the ``Link: <...>; rel="next"`` header.

Both are generators of pages that leave the *stream's* cursor to the stream:
each page says which cursor fetched it and which fetches the next one, so a
stream can yield ``Page(records, cursor=...)`` that resumes right after it.
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
    """One page of a cursor-paginated API: the body, the cursor that fetched it, the next one."""

    data: T
    cursor: str | None
    next_cursor: str | None


def cursor_pages(
    client: HttpClient,
    url: str,
    *,
    next_cursor: str | Callable[[Any], Any],
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
    extract = next_cursor if callable(next_cursor) else (lambda body: json_path(body, next_cursor))  # type: ignore[arg-type]
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


def _loop(client: HttpClient, response: httpx.Response, detail: str) -> ResponseError:
    request = response.request
    return ResponseError(
        detail, connector=client.connector, method=request.method, url=error_url(request.url), response=response
    )
