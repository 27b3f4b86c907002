"""A lead -> cdp records (``cdp_core.records.Record``: kind, data, identifiers, time, key).

``field_data`` is a list of ``{name, values[]}``, one per question of the form:

- ``email`` -> identifier ``email``; ``phone_number`` -> identifier ``phone``
  (``work_email`` / ``work_phone_number`` stand in when the form asks only for
  those; otherwise they are traits);
- every other answer is a trait under its question's name: the standard ones
  (``full_name``, ``first_name``, ``last_name``, ``city``, ``state``, ``zip_code``,
  ``country``, ``date_of_birth``, ``gender``, ``job_title``, ``company_name``...) and
  the form's custom questions alike; a question named like one of the lead's own
  fields (``form_id``...) is kept as ``field_NAME``;
- one value becomes a string, several a list, none nothing.

The lead's id is the identifier ``meta_lead_id``. Identifiers are passed as Meta
has them; the profile store normalizes them (email lowercased, phone to E.164).
"""

from __future__ import annotations

from typing import Any

from cdp_core import Record, RecordKind
from cdp_core.timeutil import as_utc

from cdp_meta_leads.models import Lead

IDENTIFIER_FIELDS = {"email": "email", "phone_number": "phone"}
FALLBACK_IDENTIFIER_FIELDS = {"work_email": "email", "work_phone_number": "phone"}
LEAD_KEYS = frozenset({"lead_id", "form_id", "ad_id", "campaign_id", "created_time", "event"})
EVENT_NAME = "lead_form_submitted"


def _value(values: list[Any]) -> Any:
    kept = [v for v in values if v not in (None, "")]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else kept


def answers(lead: Lead) -> tuple[dict[str, str | list[str]], dict[str, Any]]:
    """(identifiers, traits) from the lead's ``field_data``."""
    identifiers: dict[str, str | list[str]] = {"meta_lead_id": lead.id}
    traits: dict[str, Any] = {}
    fallbacks: dict[str, str] = {}
    for field in lead.field_data:
        value = _value(field.values)
        if value is None:
            continue
        name = field.name.strip()
        first = str(value[0] if isinstance(value, list) else value)
        if name in IDENTIFIER_FIELDS:
            # A field's values[] with several values (an email field that took two): each is an identifier.
            several = list(dict.fromkeys(str(v).strip() for v in value if str(v).strip())) if isinstance(value, list) else []
            identifiers.setdefault(IDENTIFIER_FIELDS[name], several if len(several) > 1 else first)
            continue
        if name in FALLBACK_IDENTIFIER_FIELDS:
            fallbacks.setdefault(FALLBACK_IDENTIFIER_FIELDS[name], first)
        traits[f"field_{name}" if name in LEAD_KEYS else name] = value
    for kind, value in fallbacks.items():
        if kind not in identifiers:
            identifiers[kind] = value
            traits.pop(next(k for k, v in FALLBACK_IDENTIFIER_FIELDS.items() if v == kind), None)
    return identifiers, traits


def _about(lead: Lead, form_id: str) -> dict[str, Any]:
    about: dict[str, Any] = {
        "lead_id": lead.id,
        "form_id": form_id,
        "ad_id": lead.ad_id,
        "campaign_id": lead.campaign_id,
        "created_time": as_utc(lead.created_time).isoformat(),
    }
    for key, value in (lead.model_extra or {}).items():
        if key not in about:
            about[key] = value
    return {k: v for k, v in about.items() if v is not None}


def lead_profile(lead: Lead, form_id: str, stream: str) -> Record:
    """The lead as a ``profile`` record (key: the lead id): its answers are traits."""
    identifiers, traits = answers(lead)
    return Record(
        stream=stream,
        kind=RecordKind.profile,
        key=lead.id,
        data={**_about(lead, form_id), **traits},
        identifiers=identifiers,
        occurred_at=as_utc(lead.created_time),
    )


def lead_event(lead: Lead, form_id: str, stream: str) -> Record:
    """The submission as an ``event`` record named ``lead_form_submitted`` (key: the lead id), without the answers."""
    identifiers, _ = answers(lead)
    return Record(
        stream=stream,
        kind=RecordKind.event,
        key=lead.id,
        data={"event": EVENT_NAME, **_about(lead, form_id)},
        identifiers=identifiers,
        occurred_at=as_utc(lead.created_time),
    )
