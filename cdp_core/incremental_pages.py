"""The safe incremental read: pages of an API filtered from a mark, resumable after every page.

A source gives a ``fetch(start, position)`` that requests the API from the filter
value ``start`` (None: no filter yet) at the paging position ``position`` (None: the
first page) and yields ``(items, next_position)`` per page (``next_position`` None
on the last one). :func:`incremental_pages` does the rest with an
:class:`~cdp_core.incremental.Incremental`: it drops what was delivered already,
sets aside items whose cursor value cannot be read, and gives each page the cursor
that resumes right after it::

    inc = Incremental("updated_at")
    for batch in incremental_pages(inc, cursor, fetch, key="id", ascending=True):
        yield Page([to_record(item) for item in batch.items], batch.cursor, [reject(why, item) for item, why in batch.bad])

An item without a key cannot be told apart from a new one by the mark; the helper passes it
on once per read (by its content), so a caller that rejects it does so once, though an
ascending read asking again from its value meets it twice.

With ``ascending`` (the API returns records oldest first by the cursor field, and its
filter is inclusive: ``>=``), every next page is asked *from the last value read*
rather than at the next offset or token. A record updated during the read moves to
the end of the ordering and is read again there; none shifts into a page already
read and is skipped, as with offsets over changing data. Only when a whole page
shares the filter's value does the read page on at the API's next position.
Without ``ascending`` the filter is fixed for the whole read and the pages follow
the API's positions (safe when the API pages a snapshot, or by its own keyset tokens).

The cursor after a page:

- the mark (``inc.to_cursor()``: the last value read and the keys delivered at it)
  after the last page, and after a page from which an ascending read asks again;
- otherwise ``{"start": <the cursor this filter started from>, "page": <next position>,
  "mark": ..., "fresh": ...}``: the same filter, the next page.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cdp_core.fieldpaths import lookup
from cdp_core.incremental import CursorValueError, Incremental
from cdp_core.records import JsonValue

Position = str | int | None
"""Where the API's paging is inside one filtered read: an offset, a page number, a token, a URL."""
Fetch = Callable[[Any, Position], Iterable[tuple[list[Any], Position]]]


@dataclass
class Batch:
    """One page: the items to deliver, the items whose cursor value is unreadable (with why), the cursor after it."""

    items: list[Any]
    cursor: JsonValue
    bad: list[tuple[Any, str]] = field(default_factory=list)


def incremental_pages(
    inc: Incremental,
    cursor: JsonValue,
    fetch: Fetch,
    *,
    key: str | Callable[[Any], str | None] = "id",
    value: str | Callable[[Any], Any] | None = None,
    ascending: bool = False,
    position_of: Callable[[Position], JsonValue] = lambda position: position,
) -> Iterator[Batch]:
    """Read ``fetch``'s pages from ``cursor`` (None: the first read); see the module's docs.

    :param inc: the stream's incremental state, not loaded yet (its cursor layout is the cursor's).
    :param key: the item's key field (a dotted path) or a function of the item.
    :param value: the item's cursor value: a dotted path or a function; default ``inc.cursor_field``.
    :param ascending: the API returns items oldest first and filters with ``>=``: ask again from the mark.
    :param position_of: a position as it is saved (drop a secret a next URL carries).
    """
    key_of = key if callable(key) else (lambda item: _text(lookup(item, key)))
    path = value if value is not None else inc.cursor_field
    value_of = path if callable(path) else (lambda item: lookup(item, path))
    state = cursor if isinstance(cursor, dict) else {}
    position: Position = state.get("page")
    if "page" in state:
        inc.load(state.get("start"))
        inc.load_progress(state.get("mark"), state.get("fresh"))
    else:
        inc.load(cursor)
    keyless: set[str] = set()  # items without a key this read passed on (the caller rejects them): once each
    while True:
        since = inc.start_value
        for items, following in fetch(since, position):
            batch = Batch([], None)
            for item in items:
                try:
                    found = value_of(item)
                    if found is None or found == "":
                        raise CursorValueError(inc.cursor_field, found, "present")
                    item_key = key_of(item)
                    if item_key is None and _seen_before(keyless, item):
                        continue  # met again where an ascending read asked from its value: rejected already
                    if inc.admit(item_key, found):
                        batch.items.append(item)
                except CursorValueError as exc:
                    batch.bad.append((item, f"{exc} (the cursor did not move)"))
            inc.prune()
            if following is None:
                batch.cursor = inc.to_cursor()
                yield batch
                return
            start = inc.next_start()
            if ascending and start is not None and (since is None or start > since):
                batch.cursor = inc.to_cursor()
                fresh = dataclasses.replace(inc)
                inc.__dict__.update(fresh.__dict__)  # the caller's object, restarted from the mark
                inc.load(batch.cursor)
                yield batch
                position = None
                break
            batch.cursor = {
                "start": inc.start_cursor(), "page": position_of(following),
                "mark": inc.encode(inc.last_value), "fresh": inc.encode_seen(inc.fresh),
            }  # fmt: skip
            yield batch
        else:
            return


def _seen_before(seen: set[str], item: Any) -> bool:
    """Whether this very item (same content) was met before in the read; notes it if not."""
    fingerprint = json.dumps(item, sort_keys=True, default=str)
    if fingerprint in seen:
        return True
    seen.add(fingerprint)
    return False


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    text = str(value)
    return text or None


__all__ = ["Batch", "Fetch", "Position", "incremental_pages"]
