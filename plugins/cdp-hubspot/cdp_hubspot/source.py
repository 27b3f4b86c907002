"""The HubSpot source: contacts and companies, incremental through the CRM search API
(archived contacts: :mod:`cdp_hubspot.archived`).

How a read walks the search API
-------------------------------
Each request is ``POST /crm/v3/objects/{object}/search`` with one filter on the
object's last-modified property, sorted ascending, ``limit`` = ``page_size``::

    {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "<ms>"}]}],
     "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
     "properties": [...], "limit": 200}

After every page the filter is restarted from the last ``lastmodifieddate`` seen
(keyset paging), instead of following HubSpot's ``after`` token:

* ``after`` is an offset into a live result set: when a contact already read is
  modified (or deleted) while the read goes on, every later contact moves up one
  place and the one at the page boundary is silently skipped;
* a search returns at most 10,000 results (``after`` past that is a 400), so a
  long read has to restart the filter anyway; restarting it every page means the
  cap is never reached and there is one code path, not two.

The restart is ``GTE`` the last value, so contacts sharing that millisecond are
not lost; the ones already delivered are dropped by id. Should one page hold only
contacts of one millisecond (a bulk import: more than ``page_size`` of them), the
read walks that millisecond by ``hs_object_id`` (``EQ`` the time, ``hs_object_id GT``
the last id, sorted by id) and then goes on with ``GT`` that time.

Across runs the cursor keeps the newest time delivered (``mark``); the next run
starts ``lookback`` seconds before it (HubSpot's search index lags writes by a few
seconds) and drops what it already delivered: the cursor keeps the id and time of
every record delivered inside the lookback window (``seen``). A contact modified
again has a newer time and is delivered again: that is a new version, not a repeat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import httpx
from cdp_core import ConnectorContext, CursorValueError, Incremental, Page, Record, RecordKind, Rejected, Source, Stream
from cdp_core.http import HttpClient, ResponseError, error_url, response_json
from cdp_core.isolation import item_key, reject, split_items
from cdp_core.traits import TraitMap, stream_traits

from cdp_hubspot.archived import ArchivedContactsStream
from cdp_hubspot.config import COMPANY_TRAITS, CONTACT_TRAITS, CrmObject, HubSpotConfig, SearchPage, make_client

OBJECT_ID_PROPERTY = "hs_object_id"


@dataclass(frozen=True)
class ObjectType:
    """What differs between the CRM objects the source reads."""

    stream: str
    object_type: str
    time_property: str
    id_identifier: str
    person: bool
    """Contacts are people (email and phone become identifiers); companies are not."""
    traits: TraitMap
    """The default trait mapping (``traits.STREAM`` in the connector's config replaces it)."""

    def properties(self, config: HubSpotConfig) -> list[str]:
        names = config.properties if self.person else config.company_properties
        return list(dict.fromkeys([*names, self.time_property]))


CONTACTS = ObjectType("contacts", "contacts", "lastmodifieddate", "hubspot_contact_id", True, CONTACT_TRAITS)
COMPANIES = ObjectType("companies", "companies", "hs_lastmodifieddate", "hubspot_company_id", False, COMPANY_TRAITS)


_TIMES = Incremental("lastmodifieddate", unit="ms")
"""Reads and writes HubSpot's times (epoch milliseconds) the way the cursor does."""


def parse_time(value: Any) -> int | None:
    """HubSpot's datetime property (ISO 8601, or epoch milliseconds) as epoch milliseconds; None if it is neither."""
    try:
        return _TIMES.encode(_TIMES.parse(value))
    except CursorValueError:
        return None


def _incremental(time_property: str, lookback_seconds: int) -> Incremental:
    """The cursor's mark, lookback and delivered ids, in the layout HubSpot cursors have always had.

    ``{"mark": ms, "seen": {id: ms}}``: the newest time delivered, and every id delivered
    at or after ``mark - lookback`` with its time.
    """
    return Incremental(time_property, lookback=timedelta(seconds=lookback_seconds), cursor_key="mark", unit="ms")


@dataclass
class SearchState:
    """Where a read is; saved as the page's cursor (JSON).

    ``times``: the mark (the newest modification time delivered, epoch ms, across runs) and
    the ids delivered at or after ``mark - lookback`` (``seen``), which the next read drops.
    ``pos``/``strict``: inside a read, the next query's lower bound (``GT`` if strict, else ``GTE``).
    ``tie_at``/``tie_after``: inside a read, walking one millisecond by object id.
    A cursor without ``pos`` is a finished read: the next one starts at ``mark - lookback``.
    """

    times: Incremental
    pos: int | None = None
    strict: bool = False
    tie_at: int | None = None
    tie_after: str | None = None

    @classmethod
    def load(cls, cursor: Any, stream: str, times: Incremental) -> SearchState:
        if cursor is None:
            return cls(times)
        if not isinstance(cursor, dict):
            raise TypeError(f"stream {stream!r}: cursor {cursor!r} is not a HubSpot search cursor (a JSON object)")
        tie = cursor.get("tie") or {}
        return cls(
            times.load(cursor),
            pos=_int_or_none(cursor.get("pos")),
            strict=bool(cursor.get("strict", False)),
            tie_at=_int_or_none(tie.get("at")),
            tie_after=str(tie["after"]) if tie.get("after") is not None else None,
        )

    def cursor(self, *, final: bool) -> dict[str, Any]:
        out: dict[str, Any] = self.times.to_cursor()
        if self.times.last_value is not None:
            out["mark_at"] = self.times.last_value.isoformat().replace("+00:00", "Z")  # for `cdp runs`; not loaded
        if not final:
            out["pos"], out["strict"] = self.pos, self.strict
            if self.tie_at is not None:
                out["tie"] = {"at": self.tie_at, "after": self.tie_after}
        return out


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


class SearchStream(Stream):
    """Contacts or companies, incremental by their last-modified property (module docstring)."""

    def __init__(self, source: HubSpotSource, spec: ObjectType) -> None:
        self.source = source
        self.spec = spec
        self.name = spec.stream
        self.kind = RecordKind.profile
        self.primary_key = ("id",)
        self.cursor_field = spec.time_property
        self.identifier_types = (spec.id_identifier, "email", "phone") if spec.person else (spec.id_identifier,)
        self.traits = stream_traits(spec.traits, source.config.traits, spec.stream)

    @property
    def path(self) -> str:
        return f"/crm/v3/objects/{self.spec.object_type}/search"

    def read(self, cursor: Any) -> Iterator[Page]:
        times = _incremental(self.spec.time_property, self.source.config.lookback)
        state = SearchState.load(cursor, self.name, times)
        if state.pos is None:  # a new read: from the start, or lookback before the last run's mark
            start = times.encode(times.start_value)
            state.pos = max(0, start) if isinstance(start, int) else 0
            state.strict = False
        previous: dict[str, Any] | None = None
        while True:
            body = self._query(state)
            if body == previous:  # cannot happen with an API that honours the filter: never loop
                raise self._error(None, "the search made no progress (the same query twice); stopping")
            previous = body
            page, response, results, rejects = self._search(body)
            # delivered already (the lookback overlap or the restart's boundary) are dropped
            records = [self._record(obj, ts) for obj, ts in results if times.admit(obj.id, ts)]
            more = bool(page.results) and page.paging is not None and page.paging.next is not None
            if not more and state.tie_at is None:
                state.pos, state.strict = None, False
                times.prune()
                yield Page(records, state.cursor(final=True), rejects)
                return
            if more and not results:  # more to come, but nothing on this page to restart the filter from
                raise self._error(response, "no result of a full page could be read (all quarantined): cannot page on")
            last_id, last_ts = (results[-1][0].id, results[-1][1]) if results else (None, None)
            if state.tie_at is not None:
                if more:
                    state.tie_after = last_id
                else:  # that millisecond is done: go on after it
                    state.pos, state.strict, state.tie_at, state.tie_after = state.tie_at, True, None, None
            elif last_ts == state.pos and not state.strict:
                # A full page of one millisecond: GTE it again would return the same page. Walk that
                # millisecond by id from its first id (this page was in no id order; repeats are dropped).
                state.tie_at, state.tie_after = last_ts, None
            else:
                if last_ts is None or state.pos is None or last_ts < state.pos:
                    raise self._error(response, f"results not sorted by {self.spec.time_property} ascending")
                state.pos, state.strict = last_ts, False
            times.prune()
            if records or rejects:
                yield Page(records, state.cursor(final=False), rejects)

    def _query(self, state: SearchState) -> dict[str, Any]:
        time_property = self.spec.time_property
        if state.tie_at is not None:
            filters = [{"propertyName": time_property, "operator": "EQ", "value": str(state.tie_at)}]
            if state.tie_after is not None:
                filters.append({"propertyName": OBJECT_ID_PROPERTY, "operator": "GT", "value": state.tie_after})
            sort = OBJECT_ID_PROPERTY
        else:
            operator = "GT" if state.strict else "GTE"
            filters = [{"propertyName": time_property, "operator": operator, "value": str(state.pos)}]
            sort = time_property
        return {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": self.spec.properties(self.source.config),
            "limit": self.source.config.page_size,
        }

    def _search(
        self, body: dict[str, Any]
    ) -> tuple[SearchPage, httpx.Response, list[tuple[CrmObject, int]], list[Rejected]]:
        """One search request: the page's envelope is validated as a whole (a malformed one raises
        before anything of it is used), each result on its own (a bad one is quarantined)."""
        client = self.source.client
        response = client.request("POST", self.path, json=body, idempotent=True)  # a search is safe to repeat
        page = response_json(response, SearchPage, connector=client.connector)
        where = f"POST {self.path}"
        good, rejects = split_items(page.results, CrmObject, where=where, prefix=f"hubspot {self.name}: ")
        results: list[tuple[CrmObject, int]] = []
        for obj, raw in good:
            ts = parse_time(obj.properties.get(self.spec.time_property))
            if ts is None:
                reason = (
                    f"hubspot {self.name}: {where}: {self.spec.object_type[:-1]} {obj.id}: "
                    f"{self.spec.time_property} is missing or not a date-time (ISO 8601 or epoch milliseconds)"
                )
                rejects.append(reject(reason, raw, key=item_key(raw, "id")))
                continue
            results.append((obj, ts))
        return page, response, results, rejects

    def _error(self, response: httpx.Response | None, detail: str) -> ResponseError:
        client = self.source.client
        url = f"{client.base_url}{self.path}"
        return ResponseError(
            detail,
            connector=client.connector,
            method="POST",
            url=error_url(response.request.url if response is not None else url),
            status=response.status_code if response is not None else None,
            response=response,
        )

    def _record(self, obj: CrmObject, ts: int) -> Record:
        data: dict[str, Any] = dict(obj.properties)
        data.update(createdAt=obj.createdAt, updatedAt=obj.updatedAt, archived=obj.archived)
        identifiers: dict[str, str | list[str]] = {self.spec.id_identifier: obj.id}
        if self.spec.person:
            # The primary email, then HubSpot's additional emails (``hs_additional_emails``, separated by
            # semicolons); the phone, then the mobile phone. One value stays a text, several a list.
            emails = [_text(obj.properties.get("email")), *_split(obj.properties.get("hs_additional_emails"))]
            phones = [_text(obj.properties.get("phone")), _text(obj.properties.get("mobilephone"))]
            for type_name, values in (("email", emails), ("phone", phones)):
                kept = list(dict.fromkeys(v for v in values if v))
                if kept:
                    identifiers[type_name] = kept[0] if len(kept) == 1 else kept
        return Record(
            stream=f"{self.source.context.name}.{self.name}",
            kind=self.kind,
            key=obj.id,
            data=data,
            identifiers=identifiers,
            occurred_at=datetime.fromtimestamp(ts / 1000, UTC),
        )


def _split(value: Any) -> list[str]:
    """A multi-value text property (``a@x.de;b@x.de``) as its non-empty values."""
    text = _text(value)
    return [part.strip() for part in text.split(";") if part.strip()] if text else []


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class HubSpotSource(Source):
    """A HubSpot account as a cdp source: streams ``contacts``, ``companies`` and ``contacts_archived``."""

    config_model = HubSpotConfig
    config: HubSpotConfig

    def __init__(self, config: HubSpotConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        # The core's HTTP layer; no I/O until the first request. Search has its own budget (scope).
        self.client: HttpClient = make_client(config, context, search=True)

    @cached_property
    def client_crm(self) -> HttpClient:
        """For the CRM's other endpoints (the archived list): the general budget, as the write-back."""
        return make_client(self.config, self.context, search=False)

    def streams(self) -> Sequence[Stream]:
        return [SearchStream(self, CONTACTS), SearchStream(self, COMPANIES), ArchivedContactsStream(self)]

    def close(self) -> None:
        self.client.close()
        if "client_crm" in self.__dict__:
            self.client_crm.close()
