"""The source: audience members as ``profile`` records (stream ``members``) and their email consent (``consents``).

Both streams read ``GET /lists/{list_id}/members`` the same way:

- **Incremental by ``last_changed``.** A read asks for the members changed after the
  last run (``since_last_changed``) and before a fixed upper bound
  (``before_last_changed`` = the read's start minus ``settle_seconds``), sorted by
  ``last_changed`` ascending, ``count`` members at a time with ``offset``.
- **The window is fixed for the whole read**, so a member who changes while the read
  runs leaves the window rather than moving inside it (it is read by the next run).
  Members leaving the window shift the offsets of those after them: the API's
  ``total_items`` shrinks, and the read steps its offset back by as much and skips
  the members it already delivered, so nobody is skipped.
- **The cursor** after a page is ``{"since", "seen", "window": {"before", "offset",
  "total", "newest", "newest_ids"}}``: resuming asks for the same window from the
  next offset, so it repeats nothing. After the last page it is ``{"since": newest,
  "seen": ids}``: the greatest ``last_changed`` read and the members changed at that
  very second, which the next run skips should ``since_last_changed`` include its bound.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from cdp_core import ConnectorContext, Incremental, Page, Record, RecordKind, Source, Stream
from cdp_core.http import HttpClient
from cdp_core.isolation import split_items
from cdp_core.timeutil import utc_now
from cdp_core.traits import stream_traits

from cdp_mailchimp.api import MEMBER_TRAITS, TYPE_NAME, MailchimpConfig, Member, MembersPage, make_client

log = logging.getLogger("cdp.mailchimp")

MAX_SEEN = 1000
"""At most this many member ids are kept in a cursor for the members changed in its last second."""

CONSENT_STATUS = {"subscribed": "granted", "unsubscribed": "revoked", "cleaned": "revoked"}
"""Mailchimp status -> email consent. ``pending``, ``transactional`` and ``archived`` say nothing about it."""

CONSENT_FIELDS = "members.id,members.email_address,members.status,members.last_changed,total_items"
"""Only what a consent needs (``fields``): a lighter read for the ``consents`` stream."""


class _Recent:
    """The last ``size`` member ids delivered by this read (a set with a bounded memory)."""

    def __init__(self, size: int) -> None:
        self.order: deque[str] = deque()
        self.ids: set[str] = set()
        self.size = size

    def __contains__(self, member_id: str) -> bool:
        return member_id in self.ids

    def add(self, member_id: str) -> None:
        self.order.append(member_id)
        self.ids.add(member_id)
        if len(self.order) > self.size:
            self.ids.discard(self.order.popleft())


class _MembersRead(Stream):
    """What both streams share: the windowed, offset-paged, incremental read of the audience."""

    cursor_field = "last_changed"
    primary_key = ("id",)
    identifier_types = ("mailchimp_member_id", "email")
    params: ClassVar[dict[str, str]] = {"exclude_fields": "_links,members._links"}

    def __init__(self, source: MailchimpSource) -> None:
        self.source = source
        self.traits = stream_traits(self.traits, source.config.traits, self.name)

    def records(self, member: Member) -> list[Record]:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, cursor: Any) -> Iterator[Page]:
        config: MailchimpConfig = self.source.config
        # since = the greatest last_changed delivered; seen = the members delivered at that very second
        marks = Incremental(self.cursor_field, cursor_key="since", seen_as="keys", max_seen=MAX_SEEN).load(
            cursor, what="mailchimp cursor"
        )
        window = dict(cursor.get("window") or {}) if cursor else {}
        if window:  # a read cut short: its window, offset, and what it delivered at its newest second
            marks.load_progress(window.get("newest"), window.get("newest_ids"))
        else:
            start = utc_now().replace(microsecond=0) - timedelta(seconds=config.settle_seconds)
            window = {"before": marks.encode(start), "offset": 0, "total": None}
        before = marks.encode(marks.parse(window["before"]))
        offset = int(window.get("offset") or 0)
        total: int | None = window.get("total")

        delivered = _Recent(2 * config.page_size)  # members re-read after a step back are skipped
        path = f"/lists/{config.list_id}/members"
        while True:
            params: dict[str, Any] = {
                "count": config.page_size,
                "offset": offset,
                "sort_field": "last_changed",
                "sort_dir": "ASC",
                "before_last_changed": before,
                **self.params,
            }
            if marks.start_value is not None:
                params["since_last_changed"] = marks.encode(marks.start_value)
            body: MembersPage = self.source.client.get_json(path, params=params, model=MembersPage)
            if total is not None and body.total_items < total and offset > 0:
                # Members left the window while we read (they changed, or were deleted): the ones
                # after them moved up. Read again from as many places earlier; skip who was delivered.
                back = min(total - body.total_items, offset)
                log.info(
                    "connector %s: %d member(s) left the read window; reading again from offset %d",
                    self.source.context.name, total - body.total_items, offset - back,
                )  # fmt: skip
                offset, total = offset - back, body.total_items
                continue
            total = body.total_items
            records: list[Record] = []
            members, rejects = split_items(body.members, Member, where=f"GET {path}", prefix=f"mailchimp {self.name}: ")
            for member, _raw in members:
                if member.id in delivered:
                    continue
                if not marks.admit(member.id, member.last_changed):
                    continue  # delivered by the previous run (since_last_changed includes its bound)
                delivered.add(member.id)
                records.extend(self.records(member))
            marks.prune()
            offset += len(body.members)
            if not body.members or offset >= body.total_items:
                yield Page(records, marks.to_cursor(), rejects)
                return
            window = {
                "before": before,
                "offset": offset,
                "total": total,
                "newest": marks.encode(marks.last_value),
                "newest_ids": marks.encode_seen(marks.fresh),
            }
            yield Page(records, {**marks.start_cursor(), "window": window}, rejects)

    def _stream_name(self) -> str:
        return f"{self.source.context.name}.{self.name}"

    def _identifiers(self, member: Member) -> dict[str, str]:
        identifiers = {"mailchimp_member_id": member.id}
        if member.email_address.strip():
            identifiers["email"] = member.email_address
        return identifiers


class MembersStream(_MembersRead):
    """``members``: one ``profile`` record per member: merge fields, tags and status (traits: ``MEMBER_TRAITS``);
    an ``archived`` member is a tombstone (``deleted``) of its record."""

    name = "members"
    kind = RecordKind.profile
    traits = MEMBER_TRAITS
    emits_deletions = True

    def records(self, member: Member) -> list[Record]:
        if member.status == "archived":
            # Archived by the account (DELETE on the member): a tombstone, so the store removes the member's
            # record; a member added back later comes with a newer last_changed and is stored again.
            return [Record(stream=self._stream_name(), kind=RecordKind.profile, key=member.id, deleted=True,
                           occurred_at=member.last_changed)]  # fmt: skip
        names = self.source.config.merge_fields
        data: dict[str, Any] = {}
        for tag, value in member.merge_fields.items():
            if value is None or value == "" or (isinstance(value, dict) and not any(value.values())):
                continue  # an empty merge field says nothing; it must not blank a trait set elsewhere
            data[names.get(tag, tag)] = value
        data["tags"] = [tag.name for tag in member.tags]
        data["status"] = member.status
        return [
            Record(
                stream=self._stream_name(),
                kind=RecordKind.profile,
                key=member.id,
                data=data,
                identifiers=self._identifiers(member),
                occurred_at=member.last_changed,
            )
        ]


class ConsentsStream(_MembersRead):
    """``consents``: each member's email consent, as a ``consent`` record keyed ``<member id>:email``.

    ``subscribed`` -> granted; ``unsubscribed`` -> revoked (the person withdrew it);
    ``cleaned`` -> revoked (the address bounced and Mailchimp no longer sends to it; the
    record keeps ``mailchimp_status = "cleaned"`` to tell the two apart). ``pending`` (double
    opt-in not confirmed yet), ``transactional`` (never asked) and ``archived`` (removed by the
    account, not by the person) give no record: they neither grant nor withdraw consent, and
    the last consent stored for the member stands.
    """

    name = "consents"
    kind = RecordKind.consent
    params: ClassVar[dict[str, str]] = {"fields": CONSENT_FIELDS}

    def records(self, member: Member) -> list[Record]:
        status = CONSENT_STATUS.get(member.status)
        if status is None:
            return []
        return [
            Record(
                stream=self._stream_name(),
                kind=RecordKind.consent,
                key=f"{member.id}:email",
                data={
                    "purpose": "email",
                    "status": status,
                    "source": "mailchimp",
                    "mailchimp_status": member.status,
                    "list_id": self.source.config.list_id,
                },
                identifiers=self._identifiers(member),
                occurred_at=member.last_changed,
            )
        ]


class MailchimpSource(Source):
    """One Mailchimp audience as a source: streams ``members`` and ``consents``."""

    config_model = MailchimpConfig
    config: MailchimpConfig

    def __init__(self, config: MailchimpConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.client: HttpClient = make_client(config, context)  # no I/O until the first request

    def streams(self) -> Sequence[Stream]:
        return [MembersStream(self), ConsentsStream(self)]

    def close(self) -> None:
        self.client.close()


__all__ = ["CONSENT_STATUS", "TYPE_NAME", "ConsentsStream", "MailchimpSource", "MembersStream"]
