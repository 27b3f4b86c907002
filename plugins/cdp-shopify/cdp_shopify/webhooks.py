"""Shopify webhooks: ``/webhooks/CONNECTOR`` of ``cdp serve``, and the streams that read what it logged.

A delivery is Shopify's if ``X-Shopify-Hmac-SHA256`` is the base64 HMAC-SHA256 of the
raw body keyed with ``webhook_secret`` (compared in constant time), and, when it
names one, ``X-Shopify-Shop-Domain`` is the connector's shop (an app's client secret
signs the webhooks of every shop that installed it). ``X-Shopify-Topic`` says what the
body is; ``X-Shopify-Webhook-Id`` is the delivery's id, repeated by Shopify's retries,
so a retry is dropped by the ingest log. The body is the object itself, in the Admin
REST API's shape, as the pull streams read it.

The topics kept (:data:`TOPICS`) and the streams that read them:

- ``customers/create``, ``customers/update``, ``customers/enable``, ``customers/disable``:
  stream ``webhook_customers`` (the same ``profile`` record as ``customers``) and
  ``webhook_consents`` (the same ``consent`` records as ``consents``);
- ``orders/create``, ``orders/updated``, ``orders/paid``, ``orders/cancelled``,
  ``orders/fulfilled``, ``orders/partially_fulfilled``: stream ``webhook_orders`` (the
  same ``order`` record as ``orders``);
- ``customers/delete``, ``orders/delete`` (a body with the id only): a tombstone
  (``Record.deleted``) of the customer or order in ``webhook_customers`` and ``webhook_orders``,
  and in ``webhook_consents`` one of each consent record the customer may have (``ID:email``,
  ``ID:sms``): the profile store removes the records the pull or an earlier delivery stored.
  The body does not say which consents the customer gave, so every purpose is deleted, each
  tombstone marked ``missing_ok``: a consent the customer never had passes silently. The
  customer's and the order's tombstones stay plain (their record is held once the customer or
  order was synced), so the store still warns when one names a record it does not hold.

Any other topic is acknowledged and not kept. The records carry the pull stream's name
(``CONNECTOR.customers``...) and key, so the profile store upserts the very row the pull
wrote: a person or order is never stored twice, whichever way it came.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from cdp_core import Record, RecordKind
from cdp_core.ingest import IngestEntry, IngestLogStream
from cdp_core.traits import stream_traits
from cdp_core.webhooks import (
    EntryRejected,
    Webhook,
    WebhookPayloadError,
    body_digest,
    entry_item,
    header,
    json_body,
    signature_matches,
)

from cdp_shopify.config import CUSTOMER_TRAITS, ShopifyConfig
from cdp_shopify.mapping import (
    CONSENT_PURPOSES,
    UnknownConsentState,
    consent_key,
    customer_consents,
    customer_profile,
    order_record,
)
from cdp_shopify.models import Customer, Order

if TYPE_CHECKING:
    from cdp_shopify.source import ShopifySource

log = logging.getLogger("cdp.shopify")

SIGNATURE_HEADER = "X-Shopify-Hmac-SHA256"
TOPIC_HEADER = "X-Shopify-Topic"
ID_HEADER = "X-Shopify-Webhook-Id"
SHOP_HEADER = "X-Shopify-Shop-Domain"

CUSTOMER_TOPICS = frozenset({"customers/create", "customers/update", "customers/enable", "customers/disable"})
ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    }
)
DELETE_TOPICS = frozenset({"customers/delete", "orders/delete"})
TOPICS = CUSTOMER_TOPICS | ORDER_TOPICS | DELETE_TOPICS
"""The topics whose deliveries are logged; others are acknowledged and dropped."""


class ShopifyWebhook(Webhook):
    """Shopify's webhook deliveries to a ``shopify`` connector (see the module's docs)."""

    streams = ("webhook_customers", "webhook_consents", "webhook_orders")
    secret_options = ("webhook_secret",)
    config: ShopifyConfig

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        return signature_matches(self.config.webhook_secret, body, header(headers, SIGNATURE_HEADER), encoding="base64")

    def entries(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[IngestEntry]:
        topic = (header(headers, TOPIC_HEADER) or "").strip().lower()
        if not topic:
            raise WebhookPayloadError(f"shopify webhook: no {TOPIC_HEADER} header")
        shop = (header(headers, SHOP_HEADER) or "").strip().lower()
        if shop and shop != self.config.shop:
            raise WebhookPayloadError(
                f"shopify webhook: {SHOP_HEADER} is {shop!r}; connector {self.context.name!r} reads {self.config.shop!r}"
            )
        if topic not in TOPICS:
            log.debug("connector %s: Shopify topic %s is not kept", self.context.name, topic)
            return []
        payload = json_body(body, f"shopify webhook {topic}")
        message_id = (header(headers, ID_HEADER) or "").strip() or body_digest(body)
        return [IngestEntry(self.context.name, message_id, topic, payload, received_at)]


# -- logged entries -> records: the pull streams' mapping, under the pull streams' names -----------


def _where(entry: IngestEntry) -> str:
    return f"shopify webhook {entry.kind} {entry.message_id}"


def _deleted_id(entry: IngestEntry) -> str:
    record_id = entry.body.get("id")
    if record_id is None or isinstance(record_id, bool) or str(record_id).strip() == "":
        raise EntryRejected(f"{_where(entry)}: no id of the deleted object")
    return str(record_id)


def _tombstones(
    entry: IngestEntry, stream: str, kind: RecordKind, keys: list[str], *, missing_ok: bool = False
) -> list[Record]:
    """A ``*/delete`` topic's entry as tombstones of the pull stream's records ``keys``: the store removes
    them (docs/store.md). The deletion time is unknown: the delivery's time stands for it. ``missing_ok``:
    the keys may name records that never existed (``Record.missing_ok``)."""
    return [Record(stream=f"{entry.source}.{stream}", kind=kind, key=key, deleted=True, missing_ok=missing_ok,
                   occurred_at=entry.received_at) for key in keys]  # fmt: skip


def customer_records(entry: IngestEntry) -> list[Record]:
    """A customer topic's entry as the ``profile`` record the ``customers`` stream makes of that customer."""
    if entry.kind not in CUSTOMER_TOPICS:
        if entry.kind != "customers/delete":
            return []
        return _tombstones(entry, "customers", RecordKind.profile, [_deleted_id(entry)])
    customer = entry_item(entry.body, Customer, where=_where(entry))
    return [customer_profile(customer, f"{entry.source}.customers")]


def consent_records(entry: IngestEntry) -> list[Record]:
    """A customer topic's entry as the ``consent`` records the ``consents`` stream makes of that customer.

    ``customers/delete``: a tombstone of each purpose's record, whether or not the customer gave it (the
    body has the id only), marked ``missing_ok``: most customers never had an SMS consent, and the store
    passes a tombstone of a record it does not hold silently. Left in the store, a consent record (it
    carries the customer's identifiers) would keep the deleted person alive, and in the segments that ask
    for that consent."""
    if entry.kind not in CUSTOMER_TOPICS:
        if entry.kind != "customers/delete":
            return []
        customer_id = _deleted_id(entry)
        keys = [consent_key(customer_id, purpose) for purpose, _ in CONSENT_PURPOSES]
        return _tombstones(entry, "consents", RecordKind.consent, keys, missing_ok=True)
    customer = entry_item(entry.body, Customer, where=_where(entry))
    try:
        return customer_consents(customer, f"{entry.source}.consents")
    except UnknownConsentState as exc:
        raise EntryRejected(f"{_where(entry)}: {exc}") from None


def order_records(entry: IngestEntry) -> list[Record]:
    """An order topic's entry as the ``order`` record the ``orders`` stream makes of that order."""
    if entry.kind not in ORDER_TOPICS:
        if entry.kind != "orders/delete":
            return []
        return _tombstones(entry, "orders", RecordKind.order, [_deleted_id(entry)])
    order = entry_item(entry.body, Order, where=_where(entry))
    return [order_record(order, f"{entry.source}.orders")]


class ShopifyWebhookStream(IngestLogStream):
    """The connector's logged webhook deliveries, read by cursor; the records of one kind."""

    primary_key = ("id",)
    identifier_types = ("shopify_customer_id", "email", "phone")

    def __init__(self, source: ShopifySource) -> None:
        super().__init__(
            self.name, source=source.context.name, store_url=source.context.store_url, kind=self.kind,
            identifier_types=self.identifier_types,
        )
        self.connector = source


class WebhookCustomers(ShopifyWebhookStream):
    """Customers pushed by Shopify as ``profile`` records, the same as stream ``customers`` (its trait mapping too)."""

    name = "webhook_customers"
    kind = RecordKind.profile
    records_of = "customers"
    emits_deletions = True

    def __init__(self, source: ShopifySource) -> None:
        super().__init__(source)
        self.traits = stream_traits(CUSTOMER_TRAITS, source.config.traits, "customers")

    def records(self, entry: IngestEntry) -> list[Record]:
        return customer_records(entry)


class WebhookConsents(ShopifyWebhookStream):
    """Customers' marketing consent pushed by Shopify, the same ``consent`` records as stream ``consents``."""

    name = "webhook_consents"
    kind = RecordKind.consent
    records_of = "consents"
    emits_deletions = True

    def records(self, entry: IngestEntry) -> list[Record]:
        return consent_records(entry)


class WebhookOrders(ShopifyWebhookStream):
    """Orders pushed by Shopify as ``order`` records, the same as stream ``orders``."""

    name = "webhook_orders"
    kind = RecordKind.order
    records_of = "orders"
    emits_deletions = True

    def records(self, entry: IngestEntry) -> list[Record]:
        return order_records(entry)
