"""Shopify objects -> cdp records (``cdp_core.records.Record``: kind, data, identifiers, time, key).

- a customer -> one ``profile`` record (key: the customer id);
- a customer's ``email_marketing_consent`` / ``sms_marketing_consent`` -> up to two
  ``consent`` records (keys ``ID:email`` and ``ID:sms``);
- an order -> one ``order`` record (key: the order id).

Identifiers are passed as Shopify has them; the profile store normalizes them
(email lowercased, phone to E.164) before matching.
"""

from __future__ import annotations

from typing import Any

from cdp_core import Record, RecordKind
from cdp_core.timeutil import as_utc

from cdp_shopify.models import Address, Customer, MarketingConsent, Order

CONSENT_STATUS: dict[str, str] = {
    "subscribed": "granted",  # opted in (single or confirmed)
    "unsubscribed": "revoked",  # opted in once, then opted out
    "not_subscribed": "denied",  # never opted in
    "pending": "denied",  # double opt-in started, not confirmed yet: no consent until it is
    "invalid": "denied",  # the address or number cannot receive marketing
    "redacted": "revoked",  # the customer's data was erased on request
}
"""Shopify's marketing state -> the store's consent status (granted / denied / revoked)."""

CONSENT_PURPOSES = (("email", "email_marketing_consent"), ("sms", "sms_marketing_consent"))
"""(purpose, customer field) of the consent records a customer gives."""


def consent_key(customer_id: int | str, purpose: str) -> str:
    """The key of the customer's consent record of ``purpose`` (one of :data:`CONSENT_PURPOSES`)."""
    return f"{customer_id}:{purpose}"


class UnknownConsentState(ValueError):
    """A marketing state this plugin does not know: the record is quarantined, never guessed."""


def _tags(tags: str | None) -> list[str]:
    return [t.strip() for t in (tags or "").split(",") if t.strip()]


def _address(customer: Customer) -> Address | None:
    if customer.default_address is not None:
        return customer.default_address
    defaults = [a for a in customer.addresses if a.default]
    candidates = defaults or customer.addresses
    return candidates[0] if candidates else None


def _identifiers(shopify_id: int | None, email: str | None, phone: str | None) -> dict[str, str]:
    identifiers: dict[str, str] = {}
    if shopify_id is not None:
        identifiers["shopify_customer_id"] = str(shopify_id)
    if email and email.strip():
        identifiers["email"] = email
    if phone and phone.strip():
        identifiers["phone"] = phone
    return identifiers


def customer_profile(customer: Customer, stream: str) -> Record:
    """The customer's traits as a ``profile`` record."""
    address = _address(customer)
    data: dict[str, Any] = {
        "shopify_customer_id": str(customer.id),
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "tags": _tags(customer.tags),
        "orders_count": customer.orders_count,
        "total_spent": customer.total_spent,
        "currency": customer.currency,
        "account_state": customer.state,
        "verified_email": customer.verified_email,
        "city": address.city if address else None,
        "province": address.province if address else None,
        "country": address.country if address else None,
        "country_code": address.country_code if address else None,
        "zip": address.zip if address else None,
        "addresses": [
            {"city": a.city, "country": a.country, "country_code": a.country_code}
            for a in customer.addresses
            if a.city or a.country or a.country_code
        ],
        "created_at": customer.created_at.isoformat() if customer.created_at else None,
        "updated_at": customer.updated_at.isoformat(),
    }
    return Record(
        stream=stream,
        kind=RecordKind.profile,
        key=str(customer.id),
        data={k: v for k, v in data.items() if v is not None},
        identifiers=_identifiers(customer.id, customer.email, customer.phone),
        occurred_at=as_utc(customer.updated_at),
    )


def consent_status(state: str) -> str:
    status = CONSENT_STATUS.get(state.strip().lower())
    if status is None:
        raise UnknownConsentState(
            f"unknown Shopify marketing consent state {state!r} (known: {', '.join(CONSENT_STATUS)})"
        )
    return status


def customer_consents(customer: Customer, stream: str) -> list[Record]:
    """The customer's email and SMS marketing consent as ``consent`` records (none when Shopify gives none).

    Raises :class:`UnknownConsentState` for a state not in :data:`CONSENT_STATUS`.
    """
    records: list[Record] = []
    for purpose, field in CONSENT_PURPOSES:
        consent: MarketingConsent | None = getattr(customer, field)
        if consent is None:
            continue  # no address / number on file: Shopify sends null
        when = consent.consent_updated_at or customer.updated_at
        records.append(
            Record(
                stream=stream,
                kind=RecordKind.consent,
                key=consent_key(customer.id, purpose),
                data={
                    "purpose": purpose,
                    "status": consent_status(consent.state),
                    "source": "shopify",
                    "shopify_state": consent.state,
                    "opt_in_level": consent.opt_in_level,
                    "consent_updated_at": consent.consent_updated_at.isoformat()
                    if consent.consent_updated_at
                    else None,
                    "collected_from": consent.consent_collected_from,
                    "shopify_customer_id": str(customer.id),
                },
                identifiers=_identifiers(customer.id, customer.email, customer.phone),
                occurred_at=as_utc(when),
            )
        )
    return records


def order_record(order: Order, stream: str) -> Record:
    """The order as an ``order`` record: order_id, amount, currency, status, items (cdp_profiles/store/kinds.py)."""
    customer = order.customer
    email = (customer.email if customer else None) or order.email or order.contact_email
    phone = (customer.phone if customer else None) or order.phone
    data: dict[str, Any] = {
        "order_id": str(order.id),
        "name": order.name,
        "order_number": order.order_number,
        "amount": order.total_price,
        "currency": order.currency,
        "status": order.financial_status,
        "financial_status": order.financial_status,
        "fulfillment_status": order.fulfillment_status,
        "subtotal_price": order.subtotal_price,
        "total_tax": order.total_tax,
        "total_discounts": order.total_discounts,
        "cancelled_at": order.cancelled_at.isoformat() if order.cancelled_at else None,
        "cancel_reason": order.cancel_reason,
        "closed_at": order.closed_at.isoformat() if order.closed_at else None,
        "source_name": order.source_name,
        "tags": _tags(order.tags),
        "guest": customer is None or customer.id is None,
        "items": [item.model_dump(exclude_none=True) for item in order.line_items],
        "created_at": order.created_at.isoformat() if order.created_at else None,
        "processed_at": order.processed_at.isoformat() if order.processed_at else None,
        "updated_at": order.updated_at.isoformat(),
    }
    when = order.processed_at or order.created_at or order.updated_at
    return Record(
        stream=stream,
        kind=RecordKind.order,
        key=str(order.id),
        data={k: v for k, v in data.items() if v is not None},
        identifiers=_identifiers(customer.id if customer else None, email, phone),
        occurred_at=as_utc(when),
    )
