"""The pages of one REST stream's request, whatever its paginator: (body, the position of the next page).

A position is what resumes the paging inside one filtered read: an offset, a page
number, a token, or a URL. ``None`` as the next position: this was the last page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from cdp_core.builtins.rest.config import (
    START,
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    RestStreamConfig,
)
from cdp_core.fieldpaths import json_path
from cdp_core.http import HttpClient, ResponseError, cursor_pages, link_pages, next_url_pages, offset_pages
from cdp_core.http import page_number_pages, response_json
from cdp_core.http.paging import next_link

Position = str | int | None
Body = Any


def items_of(body: Any, config: RestStreamConfig, where: Callable[[str], ResponseError]) -> list[Any]:
    """The records of a page: the list at ``record_path`` (absent or null: none); anything else fails the read."""
    found = json_path(body, config.record_path) if config.record_path else body
    if found is None:
        return []
    if not isinstance(found, list):
        place = f"record_path {config.record_path!r}" if config.record_path else "the body"
        raise where(f"{place} is a {type(found).__name__}, not a list of records")
    return found


def fill(template: Any, start: Any) -> Any:
    """The JSON body with ``"{start}"`` replaced by the filter's value."""
    if template == START:
        return start
    if isinstance(template, dict):
        return {k: fill(v, start) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, start) for v in template]
    return template


def pages(
    client: HttpClient,
    config: RestStreamConfig,
    params: dict[str, Any],
    body: dict[str, Any] | None,
    position: Position,
    count: Callable[[Any], list[Any]],
) -> Iterator[tuple[Body, Position]]:
    """Request the stream's pages from ``position`` (None: the first page)."""
    paginator = config.paginator
    post: dict[str, Any] = {"idempotent": True} if config.method == "POST" else {}  # a source's POST is a search
    if isinstance(paginator, OffsetPaginator):
        for page in offset_pages(
            client, config.path, items=count, limit=paginator.limit, offset=int(position or 0),
            limit_param=paginator.limit_param, offset_param=paginator.offset_param, total=paginator.total_path,
            has_more=paginator.has_more_path, next_offset=paginator.next_offset_path, params=params,
        ):  # fmt: skip
            yield page.data, page.next_cursor
    elif isinstance(paginator, PageNumberPaginator):
        for page in page_number_pages(
            client, config.path, items=count, page=int(position if position is not None else paginator.base_page),
            page_param=paginator.page_param, size=paginator.size, size_param=paginator.size_param,
            total_pages=paginator.total_pages_path, params=params,
        ):  # fmt: skip
            yield page.data, page.next_cursor
    elif isinstance(paginator, CursorPaginator):
        for page in cursor_pages(
            client, config.path, next_cursor=paginator.cursor_path, cursor_param=paginator.cursor_param,
            cursor=None if position is None else str(position), method=config.method,
            in_json=paginator.location == "body", params=params, json=body, **post,
        ):  # fmt: skip
            yield page.data, page.next_cursor
    elif isinstance(paginator, NextUrlPaginator):
        start = str(position) if position is not None else config.path
        for page in next_url_pages(
            client, start, next_url=paginator.next_url_path, params=params if position is None else None
        ):
            yield page.data, page.next_cursor
    elif isinstance(paginator, LinkHeaderPaginator):
        start = str(position) if position is not None else config.path
        for response in link_pages(client, start, params=params if position is None else None):
            following = next_link(response)
            yield (
                response_json(response, connector=client.connector),
                str(response.request.url.join(following)) if following else None,
            )
    else:
        response = client.request(config.method, config.path, params=params or None, json=body, **post)
        yield response_json(response, connector=client.connector), None
