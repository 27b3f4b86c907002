"""The source: stream ``responses``, one ``nps_response`` record per answered form.

**Two orders.** Typeform lists a form's responses either by ``submitted_at`` (``sort``,
with ``since``/``until`` filters on it, inclusive, to the second) or, with ``after`` a
response token, in the order it *processed* them, which ``after`` excludes; the two cannot
be combined. The orders differ: a response submitted earlier may be processed (and become
visible) later. Following ``after`` from a token reads every response processed after it,
and only those, so it is the incremental cursor: ``{"after": TOKEN}``. It cannot begin a
first read, though: no request lists the start of processing order (what a page of
``before`` holds is not documented), and ``after`` the last token of a first page by
submission time skips every response processed before that token but submitted after it.

**The first read** (no cursor, or ``{"after": null}``) therefore has three steps:

1. the *anchor*: the newest response by ``submitted_at`` (one response, ``sort=submitted_at,desc``);
   none: the form is empty, the cursor stays ``{"after": null}`` and the next run starts over;
2. every response by submission time, oldest first, each page asked ``since`` the last
   ``submitted_at`` read (inclusive: the responses of that second are asked again and dropped
   by token). A response processed before the anchor was visible before this pass began
   (Typeform shows responses in the order it processes them, the premise on which ``after``
   traverses them all without a gap) and stays visible, so the pass reads it;
3. ``after`` the anchor, to the end: every response processed after the anchor, including
   those processed during the pass; the ones the pass read already are dropped by token.

Together they read every response that exists, each once. The final cursor is the last token
of step 3, the last response processed when the read ended: every response the read
delivered was processed at or before it, so a later run's ``after`` repeats none.

**Resuming.** During step 2 the cursor is ``{"anchor": TOKEN, "since": TIME, "seen":
[tokens at TIME]}``: a resumed read asks ``since`` that time again, drops the tokens seen at
it, then goes on with step 3 from the anchor; from step 3 on it is ``{"after": TOKEN}``.
A read cut short loses nothing; it may deliver again a response it delivered before the cut
that was processed after the anchor (the store keeps one answer per token). If a whole page
of responses shares one second, ``since`` cannot get past it: the read fails and says to
raise ``page_size``, rather than skip any.

**Records.** key = the response token; data = ``score`` (the number answered to
``score_field``), ``comment``, ``survey``, ``channel``, ``form_id``;
identifiers = ``email`` (hidden field or email answer; anonymous answers have none and
stay unlinked in the store); occurred_at = ``submitted_at``. A response without a
whole-number score from 0 to 10 in ``score_field`` is quarantined with the reason
(``Page.rejects``): the cursor still moves past it. So is a response that does not match
the API's shape (no token, a date that is not one): the page goes on; only a malformed
page (no ``items`` list) fails the read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from cdp_core import ConnectorContext, Incremental, Page, Record, RecordKind, Rejected, Source, Stream
from cdp_core.http import HttpClient, response_json
from cdp_core.isolation import split_items
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cdp_typeform.api import Answer, ResponseItem, ResponsesPage, TypeformConfig, make_client
from cdp_typeform.mapping import response_record
from cdp_typeform.webhooks import WebhookResponses

Found = tuple[ResponsesPage, list[tuple[ResponseItem, Any]], list[Rejected]]
"""A page as read: its body, its valid responses (with their raw form), and the invalid ones."""


class ResponsesCursor(BaseModel):
    """``{"after": TOKEN}`` (null: a first read from the start), or a first read's pass by submission time."""

    model_config = ConfigDict(extra="forbid")

    after: str | None = Field(None, min_length=1)
    anchor: str | None = Field(None, min_length=1)
    since: str | None = None
    seen: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_phase(self) -> ResponsesCursor:
        if self.after is not None and (self.anchor or self.since or self.seen):
            raise ValueError("after goes with no anchor, since or seen")
        if self.anchor is None and (self.since or self.seen):
            raise ValueError("since and seen go with an anchor")
        return self


class ResponsesStream(Stream):
    """The form's responses as ``nps_response`` records (see the module's docs)."""

    name = "responses"
    kind = RecordKind.nps_response
    primary_key = ("token",)
    cursor_field = "token"  # incremental by the `after` token (processing order), not by a timestamp
    identifier_types = ("email",)

    def __init__(self, source: TypeformSource) -> None:
        self.source = source
        self.path = f"/forms/{source.config.form_id}/responses"

    def read(self, cursor: Any) -> Iterator[Page]:
        state = _load(cursor)
        # Every token this read delivered: a response met again (asked `since` its second again,
        # or `after` the anchor after the pass read it) is dropped. Its mark is where `after` got to.
        tokens = Incremental(self.cursor_field, type="token", cursor_key="after", seen_as=None)
        after = state.after
        if after is None:
            anchor = state.anchor or self._newest_token()
            if anchor is None:
                yield Page([], {"after": None})
                return
            yield from self._by_submission_time(anchor, state, tokens)
            after = anchor
        tokens.last_value = tokens.parse(after)
        yield from self._after(tokens)

    def _newest_token(self) -> str | None:
        """The first read's anchor: the newest response by submission time, None when the form has none."""
        body, items, _ = self._get({"page_size": 1, "sort": "submitted_at,desc"})
        if not body.items:
            return None
        if not items:  # the pass quarantines it when it gets there; it cannot be the anchor
            raise ValueError(f"typeform: GET {self.path}: the newest response has no valid token to anchor a read on")
        return items[0][0].token

    def _by_submission_time(self, anchor: str, state: ResponsesCursor, tokens: Incremental) -> Iterator[Page]:
        """Step 2: every response by ``submitted_at``, oldest first; the last page's cursor is ``after`` the anchor."""
        size = self.source.config.page_size
        mark: dict[str, Any] = {"since": state.since, "seen": state.seen}
        while True:
            # Loaded afresh per page: its start is this page's `since`, before which nothing is new.
            marks = Incremental("submitted_at", cursor_key="since", seen_as="keys").load(mark, what="typeform cursor")
            since = marks.start_value
            params: dict[str, Any] = {"page_size": size, "sort": "submitted_at,asc"}
            if since is not None:
                params["since"] = _second(since)
            body, items, rejects = self._get(params)
            records: list[Record] = []
            for item, raw in items:
                unseen = item.submitted_at is None or marks.admit(item.token, item.submitted_at)
                if tokens.admit(item.token, item.token) and unseen:
                    self._add(item, raw, records, rejects)
            if not self._more(body, items):
                yield Page(records, {"after": anchor}, rejects)
                return
            start = marks.next_start()
            if start is None or (since is not None and _second(start) == _second(since)):
                raise ValueError(
                    f"typeform: GET {self.path}: a whole page of {size} responses was submitted in the second "
                    f"{_second(since) if since else '(unknown)'}: `since` cannot get past it; raise page_size (at most 1000)"
                )
            mark = marks.to_cursor()
            yield Page(records, {"anchor": anchor, **mark}, rejects)

    def _after(self, tokens: Incremental) -> Iterator[Page]:
        """The responses processed after ``tokens.last_value``, to the end."""
        while True:
            body, items, rejects = self._get({"page_size": self.source.config.page_size, "after": tokens.last_value})
            records: list[Record] = []
            for item, raw in items:
                if tokens.admit(item.token, item.token):
                    self._add(item, raw, records, rejects)
            yield Page(records, tokens.to_cursor(), rejects)
            if not self._more(body, items):
                return

    def _get(self, params: dict[str, Any]) -> Found:
        client = self.source.client
        answer = client.get(self.path, params=params)
        body: ResponsesPage = response_json(answer, ResponsesPage, connector=client.connector)
        items, rejects = split_items(
            body.items, ResponseItem, where=f"GET {self.path}", key_field="token", prefix="typeform: "
        )
        return body, items, rejects

    def _more(self, body: ResponsesPage, items: list[tuple[ResponseItem, Any]]) -> bool:
        """Whether another page may follow: a full page, or more than one page left (then one was readable)."""
        more = bool(body.items) and (len(body.items) >= self.source.config.page_size or body.page_count > 1)
        if more and not items:
            raise ValueError(
                f"typeform: GET {self.path}: no response of a full page could be read (all quarantined): cannot page on"
            )
        return more

    def _add(self, item: ResponseItem, raw: Any, records: list[Record], rejects: list[Rejected]) -> None:
        record, reason = response_record(item, self.source.config, f"{self.source.context.name}.{self.name}")
        if record is not None:
            records.append(record)
        else:
            rejects.append(Rejected(reason=f"typeform: {reason}", raw=raw, key=item.token))


def _load(cursor: Any) -> ResponsesCursor:
    try:
        return ResponsesCursor.model_validate(cursor or {})
    except ValidationError as exc:
        raise ValueError(
            f'typeform cursor: expected {{"after": TOKEN}} or {{"anchor": TOKEN, "since": TIME, "seen": [...]}}, '
            f"got {cursor!r}"
        ) from exc


def _second(value: datetime) -> str:
    """A time as ``since`` takes it: UTC, to the second (``since`` is inclusive: flooring asks for no less)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class TypeformSource(Source):
    """One Typeform form as a source of NPS answers: stream ``responses``."""

    config_model = TypeformConfig
    config: TypeformConfig

    def __init__(self, config: TypeformConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.client: HttpClient = make_client(config, context)  # no I/O until the first request

    def streams(self) -> Sequence[Stream]:
        return [ResponsesStream(self), WebhookResponses(self)]

    def close(self) -> None:
        self.client.close()


__all__ = ["Answer", "ResponsesStream", "TypeformSource"]
