"""Meta lead ads webhooks (the Page's ``leadgen`` field): ``/webhooks/CONNECTOR`` of ``cdp serve``.

- **Subscription check** (GET): ``hub.mode=subscribe``, ``hub.verify_token`` (compared
  in constant time with ``verify_token``) and ``hub.challenge``, answered as it came.
  A wrong or missing token is refused.
- **Events** (POST): ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body
  with app_secret>``, compared in constant time. The body is
  ``{"object": "page", "entry": [{"id", "time", "changes": [{"field": "leadgen",
  "value": {"leadgen_id", "form_id", "page_id", "created_time", "ad_id", "adgroup_id"}}]}]}``;
  each ``leadgen`` change is logged under its ``leadgen_id`` (Meta's retries repeat it),
  with the change's ``value`` as body. Other fields and objects are acknowledged, not kept.

The event carries no answers: the streams ``webhook_leads`` and
``webhook_submissions`` read each logged lead with ``GET /{leadgen_id}`` (the same
fields as the pull streams ask for) through the connector's Graph client, and make the
records ``leads`` and ``submissions`` make of it, under their names and keys (which
each declares as its ``records_of``). A run that reads both streams fetches each lead
once: the second stream makes its record from the first one's answer
(:mod:`cdp_meta_leads.fetched`); each stream keeps its own cursor. A lead of a form not
in ``form_ids`` is skipped, as the pull streams do not read it. A lead Meta no longer has
(or a field it refuses) is quarantined with Meta's reason, by each stream; a token or
permission error, throttling, and 5xx that outlast the retries stop the read, which
resumes at that lead.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdp_core import Record, RecordKind
from cdp_core.http import ClientError
from cdp_core.ingest import IngestEntry, IngestLogStream
from cdp_core.traits import stream_traits
from cdp_core.webhooks import (
    EntryRejected,
    Webhook,
    WebhookPayloadError,
    entry_item,
    header,
    json_body,
    signature_matches,
)

from cdp_meta_leads.config import LEAD_TRAITS, MetaLeadsConfig
from cdp_meta_leads.fetched import FetchedLeads
from cdp_meta_leads.graph import GraphClient
from cdp_meta_leads.mapping import lead_event, lead_profile
from cdp_meta_leads.models import Lead

if TYPE_CHECKING:
    from cdp_meta_leads.source import MetaLeadsSource

log = logging.getLogger("cdp.meta_leads")

SIGNATURE_HEADER = "X-Hub-Signature-256"
KIND = "leadgen"


class MetaLeadsWebhook(Webhook):
    """The ``leadgen`` webhook of a ``meta_leads`` connector (see the module's docs)."""

    streams = ("webhook_leads", "webhook_submissions")
    secret_options = ("app_secret", "verify_token")
    config: MetaLeadsConfig

    def handshake(self, query: Mapping[str, str]) -> str | None:
        token = self.config.verify_token
        if query.get("hub.mode") != "subscribe" or token is None or not token.get_secret_value():
            return None
        given = query.get("hub.verify_token") or ""
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.get_secret_value().encode("utf-8")):
            return None
        challenge = query.get("hub.challenge")
        return challenge if challenge else None

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        return signature_matches(
            self.config.app_secret, body, header(headers, SIGNATURE_HEADER), encoding="hex", prefix="sha256="
        )

    def entries(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[IngestEntry]:
        payload = json_body(body, "meta leadgen webhook")
        if payload.get("object") != "page":
            return []
        found = payload.get("entry")
        if not isinstance(found, list):
            raise WebhookPayloadError("meta leadgen webhook: 'entry' is not a list")
        logged: list[IngestEntry] = []
        for i, item in enumerate(found):
            changes = item.get("changes") if isinstance(item, dict) else None
            if not isinstance(changes, list):
                raise WebhookPayloadError(f"meta leadgen webhook: entry[{i}].changes is not a list")
            for j, change in enumerate(changes):
                if not isinstance(change, dict) or change.get("field") != KIND:
                    continue
                value = change.get("value")
                lead_id = value.get("leadgen_id") if isinstance(value, dict) else None
                if not isinstance(lead_id, (str, int)) or isinstance(lead_id, bool) or not str(lead_id).strip():
                    raise WebhookPayloadError(f"meta leadgen webhook: entry[{i}].changes[{j}].value has no leadgen_id")
                assert isinstance(value, dict)
                logged.append(IngestEntry(self.context.name, str(lead_id).strip(), KIND, value, received_at))
        return logged


# -- logged leadgen events -> the pull streams' records ------------------------------------------


def fetch_lead(graph: GraphClient, lead_id: str, fields: str, fetched: FetchedLeads | None = None) -> Lead:
    """``GET /{lead_id}?fields=...``: the lead with its answers (``field_data``), as the pull streams read it.

    :param fetched: the run's answers: a lead asked for earlier in the run is not asked for again.
    :raises EntryRejected: Meta refuses the lead for good (deleted, an unknown field) or sends another shape.
    """
    where = f"meta leadgen {lead_id}"

    def ask() -> Any:
        try:
            response = graph.request("GET", f"/{lead_id}", params={"fields": fields})
        except ClientError as exc:  # not a token or permission error (AuthError): those stop the read
            raise EntryRejected(f"{where}: {exc.detail}") from None
        try:
            return response.json()
        except ValueError:
            raise EntryRejected(f"{where}: GET /{lead_id} did not answer JSON") from None

    body = ask() if fetched is None else fetched.answer(lead_id, ask)
    return entry_item(body, Lead, where=f"{where}: GET /{lead_id}")


def leadgen_records(
    entry: IngestEntry,
    graph: GraphClient,
    config: MetaLeadsConfig,
    make: Callable[[Lead, str, str], Record],
    stream: str,
    fetched: FetchedLeads | None = None,
) -> list[Record]:
    """A logged ``leadgen`` event as the record ``make`` (``lead_profile``, ``lead_event``) gives its lead.

    :param fetched: the run's answers (:func:`fetch_lead`).
    """
    if entry.kind != KIND:
        return []
    form_id = str(entry.body.get("form_id") or "").strip()
    if form_id not in config.form_ids:
        log.info(
            "connector %s: lead %s is of form %s, not in form_ids; skipped",
            entry.source, entry.message_id, form_id or "(none)",
        )  # fmt: skip
        return []
    lead = fetch_lead(graph, entry.message_id, config.fields, fetched)
    if lead.id != entry.message_id:
        raise EntryRejected(f"meta leadgen {entry.message_id}: GET /{entry.message_id} answered lead {lead.id}")
    return [make(lead, form_id, f"{entry.source}.{stream}")]


class WebhookLeadsStream(IngestLogStream):
    """The connector's logged ``leadgen`` events; each lead read from the Graph API when the first stream of
    the run reaches it (the source's :class:`~cdp_meta_leads.fetched.FetchedLeads`), page by page of the log."""

    primary_key = ("id",)
    identifier_types = ("meta_lead_id", "email", "phone")
    records_of: str
    """The pull stream whose records it delivers (their name and mapping), so the store upserts that stream's rows."""

    def __init__(self, source: MetaLeadsSource) -> None:
        super().__init__(
            self.name, source=source.context.name, store_url=source.context.store_url, kind=self.kind,
            identifier_types=self.identifier_types,
        )
        self.connector = source

    def make(self, lead: Lead, form_id: str, stream: str) -> Record:
        raise NotImplementedError

    def records(self, entry: IngestEntry) -> list[Record]:
        connector = self.connector
        return leadgen_records(entry, connector.graph, connector.config, self.make, self.records_of, connector.fetched)


class WebhookLeads(WebhookLeadsStream):
    """Pushed leads as the ``profile`` records of stream ``leads`` (its trait mapping too)."""

    name = "webhook_leads"
    kind = RecordKind.profile
    records_of = "leads"

    def __init__(self, source: MetaLeadsSource) -> None:
        super().__init__(source)
        self.traits = stream_traits(LEAD_TRAITS, source.config.traits, "leads")

    def make(self, lead: Lead, form_id: str, stream: str) -> Record:
        return lead_profile(lead, form_id, stream)


class WebhookSubmissions(WebhookLeadsStream):
    """Pushed leads as the ``lead_form_submitted`` events of stream ``submissions``."""

    name = "webhook_submissions"
    kind = RecordKind.event
    records_of = "submissions"

    def make(self, lead: Lead, form_id: str, stream: str) -> Record:
        return lead_event(lead, form_id, stream)
