"""The Meta lead-ads source: streams ``leads`` (profiles) and ``submissions`` (events) over all configured forms.

Each stream reads ``GET /{graph_version}/{form_id}/leads?fields=...&limit=N`` for
every form in ``form_ids``, in order, paging by ``paging.cursors.after`` while the
answer has a ``paging.next`` (the ``next`` URL itself is never followed: it
carries the access token in its query). Incremental by ``created_time``, per form,
with ``filtering=[{"field":"time_created","operator":"GREATER_THAN","value":T}]``.

One stream covers all forms, with one cursor per form inside the stream's cursor
(one committed cursor is atomic, and forms can be added later: a new form has no
entry yet and is read from its beginning)::

    {"forms": {"<form id>": {"since": S, "seen": {"<lead id>": created_unix, ...}}, ...},
     "reading": {"form": "<form id>", "after": "<paging cursor>", "newest": N, "fresh": {...}}}

``since`` is inclusive (the filter asks for ``time_created > since - 1``); it is the
newest ``created_time`` read minus ``lookback_seconds``, and ``seen`` lists the
leads already delivered at or after it, which the next read drops: leads that
share the boundary second are neither lost nor repeated. ``reading`` is there only
after a page that has a next one (``fresh``: the leads this read delivered so
far): a run that fails mid-form resumes right after the last committed page of
that form, with the same filter. Should Meta refuse that saved paging cursor
(cursors are not meant to be kept long), the form is read again from its mark;
leads of the interrupted read may then come a second time, with the same keys. Forms finished
earlier in that read keep their new ``since`` and are asked again only for what
is newer.

Both streams send their requests through the source's
:class:`~cdp_meta_leads.fetched.FetchedPages`: in a run that reads both, the second
stream at the same mark is answered from the first one's pages (each page is fetched
once per run); a stream at another mark, or alone, asks Meta as before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from cdp_core import ConnectorContext, Incremental, Page, Record, RecordKind, Source, Stream
from cdp_core.http import (
    BearerAuth,
    ClientError,
    CursorPage,
    HttpFactory,
    RateLimit,
    client_for,
    cursor_pages,
    default_factory,
)
from cdp_core.isolation import split_items
from cdp_core.traits import stream_traits

from cdp_meta_leads.config import LEAD_TRAITS, MetaLeadsConfig
from cdp_meta_leads.fetched import FetchedLeads, FetchedPages, Scratch
from cdp_meta_leads.graph import GraphClient
from cdp_meta_leads.mapping import lead_event, lead_profile
from cdp_meta_leads.models import Lead, LeadsPage
from cdp_meta_leads.webhooks import WebhookLeads, WebhookSubmissions

GRAPH_URL = "https://graph.facebook.com"

log = logging.getLogger("cdp.meta_leads")


def _after(body: LeadsPage) -> str | None:
    return body.after


class LeadsStream(Stream):
    """Leads of every configured form, incremental by ``created_time`` (cursor per form)."""

    primary_key = ("id",)
    cursor_field = "created_time"

    def __init__(self, source: MetaLeadsSource) -> None:
        self.source = source
        self.traits = stream_traits(self.traits, source.config.traits, self.name)

    @property
    def record_stream(self) -> str:
        return f"{self.source.context.name}.{self.name}"

    def record_for(self, lead: Lead, form_id: str) -> Record:
        raise NotImplementedError

    def read(self, cursor: Any) -> Iterator[Page]:
        config = self.source.config
        state = dict(cursor or {})
        forms: dict[str, dict[str, Any]] = {str(k): dict(v) for k, v in (state.get("forms") or {}).items()}
        reading: dict[str, Any] | None = state.get("reading")
        for form_id in config.form_ids:
            resume = reading if reading is not None and reading.get("form") == form_id else None
            yield from self._read_form(form_id, forms, resume)

    def _read_form(
        self, form_id: str, forms: dict[str, dict[str, Any]], resume: dict[str, Any] | None
    ) -> Iterator[Page]:
        config = self.source.config
        # The form's mark (inclusive), its lookback and the leads delivered at or after it (module docstring).
        marks = Incremental(
            self.cursor_field,
            lookback=timedelta(seconds=config.lookback_seconds),
            cursor_key="since",
            save="start",
            unit="s",
        ).load(forms.get(form_id))
        if resume:
            marks.load_progress(resume.get("newest"), resume.get("fresh"))
        params: dict[str, Any] = {"fields": config.fields, "limit": config.page_size}
        since = marks.encode(marks.start_value)
        if isinstance(since, int):
            params["filtering"] = json.dumps(
                [{"field": "time_created", "operator": "GREATER_THAN", "value": since - 1}], separators=(",", ":")
            )
        after = resume.get("after") if resume else None
        pages = self._pages(form_id, params, after)
        for page in pages:
            # delivered already (the boundary second, the lookback) are dropped
            leads, rejects = split_items(
                page.data.data, Lead, where=f"GET /{form_id}/leads", prefix=f"meta_leads {self.name}: "
            )
            records = [self.record_for(lead, form_id) for lead, _raw in leads if marks.admit(lead.id, lead.created_time)]
            marks.prune()
            if page.next_cursor:
                reading = {
                    "form": form_id,
                    "after": page.next_cursor,
                    "newest": marks.encode(marks.last_value),
                    "fresh": marks.encode_seen(marks.fresh),
                }
                yield Page(records, {"forms": dict(forms), "reading": reading}, rejects)
            else:
                forms[form_id] = marks.to_cursor()
                yield Page(records, {"forms": dict(forms)}, rejects)

    def _pages(self, form_id: str, params: dict[str, Any], after: str | None) -> Iterator[CursorPage[LeadsPage]]:
        """The form's pages from ``after``; a saved ``after`` Meta no longer accepts restarts the form's read."""

        def pages(cursor: str | None) -> Iterator[CursorPage[LeadsPage]]:
            return cursor_pages(
                self.source.pages,  # type: ignore[arg-type]  # the Graph client, through the run's pages
                f"/{form_id}/leads",
                params=params,
                cursor_param="after",
                cursor=cursor,
                next_cursor=_after,
                model=LeadsPage,
            )

        read = pages(after)
        try:
            first = next(read, None)
        except ClientError as exc:
            if after is None:
                raise
            log.warning(
                "connector %s: Meta refused the saved paging cursor of form %s (%s); reading the form again "
                "from its mark",
                self.source.graph.connector, form_id, exc.detail,
            )  # fmt: skip
            read = pages(None)
            first = next(read, None)
        if first is not None:
            yield first
            yield from read


class Leads(LeadsStream):
    """Leads as ``profile`` records: identifiers ``meta_lead_id``, ``email``, ``phone``; the answers as traits."""

    name = "leads"
    kind = RecordKind.profile
    traits = LEAD_TRAITS
    identifier_types = ("meta_lead_id", "email", "phone")

    def record_for(self, lead: Lead, form_id: str) -> Record:
        return lead_profile(lead, form_id, self.record_stream)


class Submissions(LeadsStream):
    """Each lead as an ``event`` record ``lead_form_submitted`` (form, ad, campaign; no answers)."""

    name = "submissions"
    kind = RecordKind.event
    identifier_types = ("meta_lead_id", "email", "phone")

    def record_for(self, lead: Lead, form_id: str) -> Record:
        return lead_event(lead, form_id, self.record_stream)


class MetaLeadsSource(Source):
    """Meta (Facebook / Instagram) lead forms as a cdp source."""

    config_model = MetaLeadsConfig
    config: MetaLeadsConfig

    def __init__(self, config: MetaLeadsConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        # The core's HTTP layer (retries on 429/5xx/timeouts, rate limit, redacted logs); the
        # token goes in the Authorization header, never in a URL.
        client = client_for(
            context,
            base_url=f"{config.base_url}/{config.graph_version}",
            auth=BearerAuth(config.access_token),
            rate_limit=RateLimit(10, per=1.0, burst=10),
            max_concurrency=2,
        )
        factory = context.services.get("http")
        redactor = (factory if isinstance(factory, HttpFactory) else default_factory()).redactor
        self.graph = GraphClient(client, config, redactor)
        self.scratch = Scratch()
        """What Meta answered in this run, on disk until the source closes (:mod:`cdp_meta_leads.fetched`)."""
        self.fetched = FetchedLeads(self.scratch)
        """The webhook streams' leads: each logged lead is fetched once per run."""
        self.pages = FetchedPages(self.graph, self.scratch)
        """The pull streams' pages: each page of a form is fetched once per run."""

    def streams(self) -> Sequence[Stream]:
        return [Leads(self), Submissions(self), WebhookLeads(self), WebhookSubmissions(self)]

    def close(self) -> None:
        try:
            self.pages.close()
            self.scratch.close()
        finally:
            self.graph.close()
