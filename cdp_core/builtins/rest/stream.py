"""One stream of a declarative REST source: requests, pages, cursors and records.

The cursor after a page:

- after the last page of a read, and after a page from which an ``ascending`` stream
  asks again from its mark: :meth:`Incremental.to_cursor` (the mark and the keys
  delivered at it), so the next request starts from the last value read;
- after any other page: ``{"start": <the cursor this read started from>, "page": <next
  offset, page, token or URL>, "mark": ..., "fresh": ...}``: the same filter, the next page.

A stream with no ``incremental`` block reads everything every time (its final cursor is None).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from cdp_core.base import Page, Stream
from cdp_core.builtins.rest.config import START, ApiKeyAuthConfig, RestStreamConfig
from cdp_core.builtins.rest.mapping import ItemMapper
from cdp_core.builtins.rest.pages import fill, items_of, pages
from cdp_core.http import ResponseError
from cdp_core.incremental import Incremental
from cdp_core.incremental_pages import Position, incremental_pages
from cdp_core.isolation import reject
from cdp_core.records import JsonValue, Record, Rejected
from cdp_core.traits import TraitMap

if TYPE_CHECKING:
    from cdp_core.builtins.rest import RestSource

_EPOCH_START = {"timestamp": "1970-01-01T00:00:00+00:00", "number": 0}


class RestStream(Stream):
    def __init__(self, source: RestSource, name: str, config: RestStreamConfig) -> None:
        self.source = source
        self.name = name
        self.config = config
        self.kind = config.kind
        self.primary_key = tuple(config.primary_key)
        self.cursor_field = config.incremental.cursor_path if config.incremental else None
        self.identifier_types = tuple(config.identifiers)
        self.traits = TraitMap(config.traits) if config.traits is not None else None
        self.emits_deletions = config.deleted_when is not None
        self.where = f"{config.method} {config.path}"
        self.mapper = ItemMapper(config, f"{source.context.name}.{name}", self.where)

    # -- the cursor ------------------------------------------------------------------------

    def _incremental(self) -> Incremental | None:
        inc = self.config.incremental
        if inc is None:
            return None
        unit = inc.format if inc.format in ("s", "ms") else "iso"
        return Incremental(
            inc.cursor_path, type=inc.type, initial_value=inc.initial_value, lookback=inc.lookback, unit=unit  # type: ignore[arg-type]
        )

    def _filter_value(self, value: Any) -> Any:
        """The filter's value as the API wants it (``format``)."""
        inc = self.config.incremental
        assert inc is not None
        if not isinstance(value, datetime):
            return value
        if inc.format == "s":
            return int(value.timestamp())
        if inc.format == "ms":
            return round(value.timestamp() * 1000)
        if inc.format == "iso":
            return value.isoformat().replace("+00:00", "Z")
        return value.strftime(inc.format)

    def _request(self, start: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The query and body of a request filtered from ``start`` (None: no filter yet)."""
        params = dict(self.config.params)
        body = self.config.json_body
        spec = self.config.incremental
        if spec is None:
            return params, body
        if spec.start_param and start is not None:
            params[spec.start_param] = self._filter_value(start)
        if body is not None and self.config.filters_in_body:
            inc = self._incremental()
            assert inc is not None
            body = fill(body, self._filter_value(start if start is not None else inc.parse(_EPOCH_START[spec.type])))
        return params, body

    def _position(self, position: Position) -> JsonValue:
        """A page position as saved: a URL without a key the auth put in its query."""
        auth = self.source.config.auth
        if isinstance(position, str) and isinstance(auth, ApiKeyAuthConfig) and auth.location == "query":
            url = httpx.URL(position)
            if auth.name in url.params:
                return str(url.copy_remove_param(auth.name))
        return position

    # -- reading ---------------------------------------------------------------------------

    def read(self, cursor: JsonValue) -> Iterator[Page]:
        inc = self._incremental()
        if inc is None:  # a full refresh: the cursor is only the page position inside a read
            position = cursor.get("page") if isinstance(cursor, dict) else None
            for data, following in pages(self.source.client, self.config, *self._request(None), position, self._items):
                records, rejects = self._page(self._items(data))
                yield Page(records, {"page": self._position(following)} if following is not None else None, rejects)
            return

        def fetch(start: Any, position: Position) -> Iterator[tuple[list[Any], Position]]:
            params, body = self._request(start)
            for data, following in pages(self.source.client, self.config, params, body, position, self._items):
                yield self._items(data), following

        spec = self.config.incremental
        assert spec is not None
        batches = incremental_pages(
            inc, cursor, fetch, key=self.mapper.key, ascending=spec.ascending, position_of=self._position
        )
        for batch in batches:
            records, rejects = self._page(batch.items)
            rejects += [reject(f"an item of {self.where}: {why}", item, key=self.mapper.key(item)) for item, why in batch.bad]
            yield Page(records, batch.cursor, rejects)

    def _items(self, body: Any) -> list[Any]:
        def fail(detail: str) -> ResponseError:
            return ResponseError(
                detail, connector=self.source.context.name, method=self.config.method, url=self.config.path
            )

        return items_of(body, self.config, fail)

    def _page(self, items: list[Any]) -> tuple[list[Record], list[Rejected]]:
        records: list[Record] = []
        rejects: list[Rejected] = []
        for item in items:
            built = self.mapper.record(item)
            if isinstance(built, Rejected):
                rejects.append(built)
            else:
                records.append(built)
        return records, rejects

    def parse(self, raw: JsonValue) -> Record | Rejected | None:
        """``cdp quarantine retry``: the item as the stream maps it now (no cursor moves)."""
        return self.mapper.record(raw)


__all__ = ["START", "RestStream"]
