"""What the profile store reads from each record kind (``cdp_core.records.RecordKind``).

Field names follow the vocabulary of the tools the data comes from; the first
field present wins. A record whose data cannot be read as its kind is rejected
with the reason, not stored half.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cdp_core.records import Record, RecordKind
from cdp_core.timeutil import as_utc

EVENT_NAME = ("event", "name", "type", "action")
ORDER_ID = ("order_id", "id", "order_number", "name")
ORDER_AMOUNT = ("amount", "total_price", "total", "current_total_price", "revenue")
NPS_SCORE = ("score", "nps", "nps_score", "rating")
CONSENT_STATUSES = {"granted", "denied", "revoked"}


class KindError(ValueError):
    """The record's data does not fit its kind."""


def nps_category(score: int) -> str:
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def _first(data: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = data.get(name)
        if value not in (None, ""):
            return value
    return None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def utc(value: datetime | None) -> datetime | None:
    """:func:`cdp_core.timeutil.as_utc` that lets None through (a record without a time)."""
    return None if value is None else as_utc(value)


def row_for(record: Record) -> dict[str, Any]:
    """The kind table's row for ``record`` (without stream/key); raises KindError."""
    data = record.data
    occurred = utc(record.occurred_at)
    kind = record.kind
    if kind is RecordKind.profile:
        return {"data": data, "traits": None, "occurred_at": occurred}  # traits: ProfileWriter.prepare
    if kind is RecordKind.event:
        name = _first(data, EVENT_NAME)
        if name is None:
            raise KindError(f"an event needs a name in one of: {', '.join(EVENT_NAME)}")
        return {"name": str(name), "properties": data, "occurred_at": occurred}
    if kind is RecordKind.order:
        amount = _first(data, ORDER_AMOUNT)
        try:
            parsed = None if amount is None else Decimal(str(amount))
        except InvalidOperation:
            raise KindError(f"order amount is not a number: {amount!r}") from None
        return {
            "order_id": str(_first(data, ORDER_ID) or record.key),
            "amount": parsed,
            "currency": _text(_first(data, ("currency", "currency_code"))),
            "status": _text(_first(data, ("status", "financial_status"))),
            "items": data.get("items", data.get("line_items")),
            "occurred_at": occurred,
        }
    if kind is RecordKind.nps_response:
        raw = _first(data, NPS_SCORE)
        try:
            score = int(str(raw).strip()) if raw is not None else None
        except ValueError:
            score = None
        if score is None or not 0 <= score <= 10 or str(raw).strip() not in (str(score), f"{score}.0"):
            raise KindError(f"NPS score must be a whole number from 0 to 10, got {raw!r}")
        return {
            "score": score,
            "category": nps_category(score),
            "comment": _text(data.get("comment")),
            "survey": _text(_first(data, ("survey", "form_id", "survey_id"))),
            "channel": _text(data.get("channel")),
            "answered_at": occurred,
        }
    if kind is RecordKind.consent:
        purpose = _text(data.get("purpose"))
        status = _text(data.get("status"))
        if purpose is None:
            raise KindError("a consent needs a 'purpose' (email, ads, analytics, ...)")
        if status not in CONSENT_STATUSES:
            raise KindError(f"consent status must be one of granted, denied, revoked; got {status!r}")
        return {"purpose": purpose, "status": status, "source": _text(data.get("source")), "occurred_at": occurred}
    raise KindError(f"unknown record kind {kind!r}")
