"""The Shopify Admin REST API's shapes, as far as the plugin reads them.

A page's envelope is validated before anything of it is yielded: an envelope of
the wrong shape (an ``orders`` list that is not a list) stops the read with a
:class:`cdp_core.http.ResponseError` naming the field, and the cursor stays at the
last good page. Each customer or order is then validated on its own: one of the
wrong shape (a customer without ``id``) is quarantined with its payload, the others go on. Fields the plugin does
not map are allowed and ignored (Shopify adds fields between API versions).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MarketingConsent(_Shape):
    """``email_marketing_consent`` / ``sms_marketing_consent`` of a customer."""

    state: str
    opt_in_level: str | None = None
    consent_updated_at: datetime | None = None
    consent_collected_from: str | None = None


class Address(_Shape):
    city: str | None = None
    province: str | None = None
    province_code: str | None = None
    country: str | None = None
    country_code: str | None = None
    zip: str | None = None
    default: bool | None = None


class Customer(_Shape):
    id: int
    updated_at: datetime
    created_at: datetime | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    state: str | None = None
    tags: str | None = None
    verified_email: bool | None = None
    currency: str | None = None
    orders_count: int | None = None
    total_spent: str | None = None
    default_address: Address | None = None
    addresses: list[Address] = Field(default_factory=list)
    email_marketing_consent: MarketingConsent | None = None
    sms_marketing_consent: MarketingConsent | None = None


class CustomersPage(_Shape):
    """``GET /admin/api/{version}/customers.json``."""

    customers: list[Any]
    """Each one validated on its own as a :class:`Customer`."""


class OrderCustomer(_Shape):
    id: int | None = None
    email: str | None = None
    phone: str | None = None


class LineItem(_Shape):
    id: int | None = None
    product_id: int | None = None
    variant_id: int | None = None
    sku: str | None = None
    title: str | None = None
    variant_title: str | None = None
    quantity: int | None = None
    price: str | None = None


class Order(_Shape):
    id: int
    updated_at: datetime
    created_at: datetime | None = None
    processed_at: datetime | None = None
    name: str | None = None
    order_number: int | None = None
    email: str | None = None
    contact_email: str | None = None
    phone: str | None = None
    currency: str | None = None
    total_price: str | None = None
    subtotal_price: str | None = None
    total_tax: str | None = None
    total_discounts: str | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    closed_at: datetime | None = None
    source_name: str | None = None
    tags: str | None = None
    customer: OrderCustomer | None = None
    line_items: list[LineItem] = Field(default_factory=list)


class OrdersPage(_Shape):
    """``GET /admin/api/{version}/orders.json?status=any``."""

    orders: list[Any]
    """Each one validated on its own as an :class:`Order`."""
