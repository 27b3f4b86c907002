"""The Shopify source: streams ``customers``, ``consents`` and ``orders`` over the Admin REST API.

Paging follows the ``Link: <...page_info=...>; rel="next"`` header (the next URL
is used exactly as Shopify gives it; a read resumed from a saved cursor asks for
``?limit=N&page_info=P`` and nothing else, as Shopify requires after page one).

Incremental reads filter with ``updated_at_min``, which is **inclusive**. The
cursor after a complete read is::

    {"updated_at_min": MARK, "seen": {"<id>": "<updated_at>", ...}}

where ``MARK = min(newest updated_at read, server time when the read began) -
lookback_seconds`` (never below the previous mark) and ``seen`` lists every record
already delivered whose ``updated_at`` is at or after ``MARK``. The next read asks
for ``updated_at_min=MARK`` and drops a record whose id is in ``seen`` with the
same ``updated_at``: records that share the boundary timestamp are neither lost
nor repeated, a record updated again comes back, and a record changed while a
long read was under way (on a page already read) is caught by the next run
because the mark never passes the moment the read began.

After a page that has a next one the cursor also holds ``page_info`` (the next
page), ``fresh`` (what this read delivered so far, at or after the mark it is
heading for), ``max_updated_at`` and ``started_at``: a run that fails mid-read
resumes right after the last committed page, with the same filter.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx
from cdp_core import ConnectorContext, Incremental, Page, Record, RecordKind, Rejected, Source, Stream
from cdp_core.http import (
    ApiKeyHeader,
    AuthError,
    ClientError,
    HttpClient,
    LeakyBucketHeader,
    RateLimit,
    ResponseError,
    client_for,
    error_body,
    error_url,
    link_pages,
    next_link,
    response_json,
    server_time,
)
from cdp_core.isolation import split_items
from cdp_core.timeutil import as_utc
from cdp_core.traits import stream_traits
from pydantic import BaseModel

from cdp_shopify.config import CUSTOMER_TRAITS, ShopifyConfig
from cdp_shopify.mapping import UnknownConsentState, customer_consents, customer_profile, order_record
from cdp_shopify.models import Customer, CustomersPage, Order, OrdersPage
from cdp_shopify.webhooks import WebhookConsents, WebhookCustomers, WebhookOrders

log = logging.getLogger("cdp.shopify")

CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"
STALE_PAGE_INFO = frozenset({400, 404, 422})
"""Statuses with which Shopify refuses a ``page_info`` it no longer knows."""


def iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def parse(value: str | None) -> datetime | None:
    return as_utc(datetime.fromisoformat(value)) if value else None


def shopify_reason(response: httpx.Response) -> str | None:
    """Shopify's reason for a failed call: ``{"errors": "text"}``, ``{"errors": {"field": ["text"]}}`` or ``{"error": ...}``."""
    body = error_body(response)
    if not isinstance(body, dict):
        return None
    errors = body.get("errors", body.get("error"))
    if isinstance(errors, str):
        return f"Shopify: {errors}"
    if isinstance(errors, dict):
        parts = [f"{k}: {'; '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items()]
        return f"Shopify: {', '.join(parts)}" if parts else None
    if isinstance(errors, list) and errors:
        return f"Shopify: {'; '.join(map(str, errors))}"
    return None


class ShopifyStream(Stream):
    """A REST list endpoint read with Link paging and an inclusive ``updated_at_min`` mark."""

    resource: ClassVar[str]
    """The endpoint and the body's list key: ``customers``, ``orders``."""
    page_model: ClassVar[type[BaseModel]]
    item_model: ClassVar[type[BaseModel]]
    """One item of the page's list, validated on its own: a bad one is quarantined."""
    filters: ClassVar[dict[str, str]] = {}
    """Parameters of the first request besides ``limit`` and ``updated_at_min`` (``status=any``)."""
    scope: ClassVar[str]
    """The access scope the endpoint needs, for the error message of a 401/403."""
    primary_key = ("id",)
    identifier_types = ("shopify_customer_id", "email", "phone")
    cursor_field = "updated_at"

    def __init__(self, source: ShopifySource) -> None:
        self.source = source
        self.traits = stream_traits(self.traits, source.config.traits, self.name)

    @property
    def record_stream(self) -> str:
        return f"{self.source.context.name}.{self.name}"

    def records_for(self, item: Any) -> tuple[list[Record], list[Rejected]]:
        raise NotImplementedError

    # -- the read ------------------------------------------------------------------------
    def read(self, cursor: Any) -> Iterator[Page]:
        config = self.source.config
        state = dict(cursor or {})
        # The mark, the lookback and the records delivered at or after the mark (module docstring).
        marks = Incremental(
            self.cursor_field,
            lookback=timedelta(seconds=config.lookback_seconds),
            cursor_key="updated_at_min",
            save="start",
        ).load(state)
        marks.load_progress(state.get("max_updated_at"), state.get("fresh"))  # a read cut short, if any
        started = parse(state.get("started_at"))
        page_info: str | None = state.get("page_info")

        path = f"/admin/api/{config.api_version}/{self.resource}.json"
        fresh_query: dict[str, Any] = {"limit": config.page_size, **self.filters}
        if marks.start_value is not None:
            fresh_query["updated_at_min"] = marks.encode(marks.start_value)
        params = {"limit": config.page_size, "page_info": page_info} if page_info else fresh_query

        for response in self._responses(path, params, fresh_query if page_info else None):
            if started is None:
                started = server_time(response)
            body = response_json(response, self.page_model, connector=self.source.client.connector)
            records: list[Record] = []
            items, rejects = split_items(
                getattr(body, self.resource),
                self.item_model,
                where=f"GET {path}",
                prefix=f"shopify {self.name}: ",
            )
            for item, _raw in items:
                if not marks.admit(str(item.id), item.updated_at):  # type: ignore[attr-defined]
                    continue  # delivered already with this very updated_at
                got, bad = self.records_for(item)
                records += got
                rejects += bad
            # the mark never passes the moment the read began: what changed during it comes next time
            marks.prune(cap=started)
            following = self._next_page_info(response)
            if following:
                progress = {
                    **marks.start_cursor(),
                    "fresh": marks.encode_seen(marks.fresh),
                    "page_info": following,
                    "max_updated_at": marks.encode(marks.last_value),
                    "started_at": iso(started),
                }
                yield Page(records, progress, rejects)
            else:
                yield Page(records, marks.to_cursor(cap=started), rejects)

    def _responses(self, path: str, params: dict[str, Any], restart: dict[str, Any] | None) -> Iterator[httpx.Response]:
        """The pages of one read; a resumed ``page_info`` Shopify refuses restarts from the mark (``restart``)."""
        client = self.source.client
        pages = link_pages(client, path, params=params)
        try:
            first = next(pages, None)
        except ClientError as exc:
            if restart is None or exc.status not in STALE_PAGE_INFO:
                raise self._explain(exc) from None
            log.warning(
                "connector %s: Shopify refused the saved page_info of %s (%s); reading again from updated_at_min",
                client.connector, self.name, exc.status,
            )  # fmt: skip
            pages = link_pages(client, path, params=restart)
            first = next(pages, None)
        except AuthError as exc:
            raise self._explain(exc) from None
        if first is None:
            return
        try:
            yield from itertools.chain([first], pages)
        except AuthError as exc:
            raise self._explain(exc) from None

    def _explain(self, exc: Exception) -> Exception:
        if isinstance(exc, AuthError):
            exc.detail += (
                f"; Shopify needs an Admin API access token (X-Shopify-Access-Token) with the {self.scope} scope"
            )
        return exc

    def _next_page_info(self, response: httpx.Response) -> str | None:
        link = next_link(response)
        if link is None:
            return None
        page_info = httpx.URL(link).params.get("page_info")
        if not page_info:
            request = response.request
            raise ResponseError(
                "the Link header's next URL has no page_info",
                connector=self.source.client.connector,
                method=request.method,
                url=error_url(request.url),
                status=response.status_code,
                response=response,
            )
        return page_info


class Customers(ShopifyStream):
    """Customers as ``profile`` records (identifiers ``shopify_customer_id``, ``email``, ``phone``)."""

    name = "customers"
    kind = RecordKind.profile
    traits = CUSTOMER_TRAITS
    resource = "customers"
    page_model = CustomersPage
    item_model = Customer
    scope = "read_customers"

    def records_for(self, item: Customer) -> tuple[list[Record], list[Rejected]]:
        return [customer_profile(item, self.record_stream)], []


class Consents(ShopifyStream):
    """The customers' email and SMS marketing consent as ``consent`` records (same endpoint as ``customers``)."""

    name = "consents"
    kind = RecordKind.consent
    resource = "customers"
    page_model = CustomersPage
    item_model = Customer
    scope = "read_customers"

    def records_for(self, item: Customer) -> tuple[list[Record], list[Rejected]]:
        try:
            return customer_consents(item, self.record_stream), []
        except UnknownConsentState as exc:
            raw = {
                "id": item.id,
                "email_marketing_consent": item.email_marketing_consent.model_dump(mode="json")
                if item.email_marketing_consent
                else None,
                "sms_marketing_consent": item.sms_marketing_consent.model_dump(mode="json")
                if item.sms_marketing_consent
                else None,
            }
            return [], [Rejected(reason=str(exc), raw=raw, key=str(item.id))]


class Orders(ShopifyStream):
    """Orders of any status as ``order`` records (identifiers from the customer, or the guest's email)."""

    name = "orders"
    kind = RecordKind.order
    resource = "orders"
    page_model = OrdersPage
    item_model = Order
    filters: ClassVar[dict[str, str]] = {"status": "any"}
    scope = "read_orders (read_all_orders for orders older than 60 days)"

    def records_for(self, item: Order) -> tuple[list[Record], list[Rejected]]:
        return [order_record(item, self.record_stream)], []


class ShopifySource(Source):
    """A Shopify store's Admin REST API as a cdp source."""

    config_model = ShopifyConfig
    config: ShopifyConfig

    def __init__(self, config: ShopifyConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        # The core's HTTP layer: retries (429 with Retry-After, 5xx, timeouts), a steady rate
        # of calls_per_second with the bucket's burst, and LeakyBucketHeader, which reads
        # X-Shopify-Shop-Api-Call-Limit ("32/40") on every answer and holds the connector's
        # next request once the bucket is 3/4 full, until it has drained back: a 429 is rare.
        self.client: HttpClient = client_for(
            context,
            base_url=config.api_base,
            auth=ApiKeyHeader("X-Shopify-Access-Token", config.access_token),
            headers={"Accept": "application/json"},
            rate_limit=RateLimit(config.calls_per_second, per=1.0, burst=config.bucket_size),
            max_concurrency=2,
            rate_policy=LeakyBucketHeader(
                header=CALL_LIMIT_HEADER, leak_rate=float(config.calls_per_second), threshold=0.75
            ),
            explain=shopify_reason,
        )

    def streams(self) -> Sequence[Stream]:
        return [
            Customers(self), Consents(self), Orders(self),
            WebhookCustomers(self), WebhookConsents(self), WebhookOrders(self),
        ]  # fmt: skip

    def close(self) -> None:
        self.client.close()
