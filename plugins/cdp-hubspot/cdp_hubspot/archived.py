"""``contacts_archived``: contacts archived (deleted) in HubSpot, as tombstones of ``contacts``' records.

The search API never returns an archived contact; the list endpoint does::

    GET /crm/v3/objects/contacts?archived=true&limit=100&after=CURSOR

paged by ``paging.next.after`` (no ``paging`` on the last page), each result with ``id``,
``updatedAt`` and, mostly, ``archivedAt``. Each becomes ``Record(stream=CONNECTOR.contacts,
kind=profile, key=<id>, deleted=True, occurred_at=archivedAt or updatedAt)``: the profile
store removes the record ``contacts`` stored of that contact and recomputes the person.

The list has no filter by time and is not sorted by it, so every run reads it whole and the
kernel's :class:`~cdp_core.Incremental` drops what earlier runs delivered: it keeps the newest
archival time delivered (the next run starts ``lookback`` before it) and the ids delivered
from there on (``seen``). A contact archived again after a restore has a newer time and is
delivered again. The mark never passes the moment the read began (the first page's ``Date``):
a contact archived while a read pages on may be listed before the page the read is at; it is
newer than that moment, so the next run delivers it. Inside a read the cursor keeps the read's
start, the next ``after``, and what the read delivered so far: a failed run resumes after its
last committed page.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cdp_core import CursorValueError, Incremental, Page, Record, RecordKind, Rejected, Stream
from cdp_core.http import ResponseError, error_url, response_json, server_time
from cdp_core.isolation import item_key, reject, split_items
from cdp_core.timeutil import as_utc

from cdp_hubspot.config import ArchivedObject, SearchPage

if TYPE_CHECKING:
    from cdp_hubspot.source import HubSpotSource

LIST_LIMIT = 100
"""HubSpot's maximum ``limit`` of the list endpoint (the search's is 200)."""


class ArchivedContactsStream(Stream):
    """The archived contacts, as tombstones of the ``contacts`` stream's records (module docstring)."""

    name = "contacts_archived"
    kind = RecordKind.profile
    primary_key = ("id",)
    cursor_field = "archivedAt"
    records_of = "contacts"
    emits_deletions = True
    path = "/crm/v3/objects/contacts"

    def __init__(self, source: HubSpotSource) -> None:
        self.source = source

    def _marks(self) -> Incremental:
        lookback = timedelta(seconds=self.source.config.lookback)
        return Incremental(self.cursor_field, lookback=lookback, cursor_key="archived_since", save="start")

    def read(self, cursor: Any) -> Iterator[Page]:
        state = cursor or {}
        if not isinstance(state, dict):
            raise TypeError(
                f"stream {self.name!r}: cursor {cursor!r} is not a HubSpot archived-list cursor (a JSON object)"
            )
        marks = self._marks().load(state, what=f"hubspot {self.name} cursor")
        marks.load_progress(state.get("newest"), state.get("fresh"))  # a read cut short, if any
        started = _instant(state.get("started_at"))
        after: str | None = state.get("after")
        client = self.source.client_crm
        while True:
            params: dict[str, Any] = {"archived": "true", "limit": min(self.source.config.page_size, LIST_LIMIT)}
            if after is not None:
                params["after"] = after
            response = client.request("GET", self.path, params=params)
            if started is None:
                started = server_time(response)
            page = response_json(response, SearchPage, connector=client.connector)
            records, rejects = self._records(page, marks)
            marks.prune(cap=started)
            following = page.paging.next.after if page.paging is not None and page.paging.next is not None else None
            if not following or not page.results:
                yield Page(records, marks.to_cursor(cap=started), rejects)
                return
            if following == after:
                raise ResponseError(
                    "the list gave the same next cursor again (paging.next.after)",
                    connector=client.connector, method="GET", url=error_url(response.request.url),
                    status=response.status_code, response=response,
                )  # fmt: skip
            after = following
            if records or rejects:
                progress = {
                    **marks.start_cursor(),
                    "after": after,
                    "newest": marks.encode(marks.last_value),
                    "fresh": marks.encode_seen(marks.fresh),
                    "started_at": as_utc(started).isoformat(),
                }
                yield Page(records, progress, rejects)

    def _records(self, page: SearchPage, marks: Incremental) -> tuple[list[Record], list[Rejected]]:
        where = f"GET {self.path}?archived=true"
        good, rejects = split_items(page.results, ArchivedObject, where=where, prefix=f"hubspot {self.name}: ")
        stream = f"{self.source.context.name}.{self.records_of}"
        records: list[Record] = []
        for obj, raw in good:
            when = obj.archivedAt or obj.updatedAt
            try:
                if not marks.admit(obj.id, when):
                    continue  # delivered by an earlier run (or earlier in this one)
            except CursorValueError:
                reason = f"hubspot {self.name}: {where}: contact {obj.id}: archivedAt and updatedAt are missing or not a date-time"
                rejects.append(reject(reason, raw, key=item_key(raw, "id")))
                continue
            occurred = marks.parse(when)
            records.append(Record(stream=stream, kind=self.kind, key=obj.id, deleted=True, occurred_at=occurred))
        return records, rejects


def _instant(value: Any) -> datetime | None:
    return as_utc(datetime.fromisoformat(value)) if isinstance(value, str) and value else None
