"""Typeform webhooks: ``/webhooks/CONNECTOR`` of ``cdp serve``, and the stream that reads what it logged.

A delivery is Typeform's if ``Typeform-Signature`` is ``sha256=`` and the base64
HMAC-SHA256 of the raw body keyed with the webhook's secret (``webhook_secret``),
compared in constant time. The body is ``{"event_id", "event_type": "form_response",
"form_response": {"form_id", "token", "submitted_at", "landed_at", "answers",
"hidden", "calculated", "definition", ...}}``: the response in the Responses API's
item shape. It is logged under the response ``token`` (one per submitted response; a
retry, which repeats the event, or the same response sent again under a new
``event_id``, is dropped); other event types are acknowledged and not kept.

The stream ``webhook_responses`` makes of each the record the ``responses`` stream
makes of the same response (stream ``CONNECTOR.responses``, key the token), so the
store keeps one answer whichever way it came. A response without a usable score, of
another form than ``form_id``, or of the wrong shape is quarantined with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from cdp_core import Record, RecordKind
from cdp_core.ingest import IngestEntry, IngestLogStream
from cdp_core.webhooks import (
    EntryRejected,
    Webhook,
    WebhookPayloadError,
    entry_item,
    header,
    json_body,
    signature_matches,
)

from cdp_typeform.api import ResponseItem, TypeformConfig
from cdp_typeform.mapping import response_record

if TYPE_CHECKING:
    from cdp_typeform.source import TypeformSource

SIGNATURE_HEADER = "Typeform-Signature"
KIND = "form_response"


class TypeformWebhook(Webhook):
    """A Typeform form's webhook to a ``typeform`` connector (see the module's docs)."""

    streams = ("webhook_responses",)
    secret_options = ("webhook_secret",)
    config: TypeformConfig

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        return signature_matches(
            self.config.webhook_secret, body, header(headers, SIGNATURE_HEADER), encoding="base64", prefix="sha256="
        )

    def entries(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[IngestEntry]:
        payload = json_body(body, "typeform webhook")
        if payload.get("event_type") != KIND:
            return []
        response = payload.get("form_response")
        token = response.get("token") if isinstance(response, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise WebhookPayloadError("typeform webhook: form_response.token is missing")
        return [IngestEntry(self.context.name, token.strip(), KIND, payload, received_at)]


def response_records(entry: IngestEntry, config: TypeformConfig) -> list[Record]:
    """A logged ``form_response`` as the ``nps_response`` record the ``responses`` stream makes of that response.

    :raises EntryRejected: no usable score, another form, or not a response's shape (the reason, as the pull gives it).
    """
    if entry.kind != KIND:
        return []
    where = f"typeform webhook {entry.message_id}"
    body = entry.body.get("form_response")
    item = entry_item(body, ResponseItem, where=where)
    form_id = body.get("form_id") if isinstance(body, dict) else None
    if form_id not in (None, config.form_id):
        raise EntryRejected(
            f"{where}: a response of form {form_id!r}; connector {entry.source!r} reads {config.form_id!r}"
        )
    record, reason = response_record(item, config, f"{entry.source}.{WebhookResponses.records_of}")
    if record is None:
        raise EntryRejected(f"typeform: {reason}")
    return [record]


class WebhookResponses(IngestLogStream):
    """Responses pushed by Typeform as the ``nps_response`` records of stream ``responses``."""

    name = "webhook_responses"
    kind = RecordKind.nps_response
    records_of = "responses"  # its records are those of the pull stream: the store keeps one row per response
    primary_key = ("token",)
    identifier_types = ("email",)

    def __init__(self, source: TypeformSource) -> None:
        super().__init__(
            self.name, source=source.context.name, store_url=source.context.store_url, kind=self.kind,
            identifier_types=self.identifier_types,
        )
        self.connector = source

    def records(self, entry: IngestEntry) -> list[Record]:
        return response_records(entry, self.connector.config)
