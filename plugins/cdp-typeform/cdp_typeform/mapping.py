"""One Typeform response -> one ``nps_response`` record: what the ``responses`` stream and the webhook share.

key = the response ``token``; data = ``score`` (the number answered to ``score_field``),
``comment``, ``survey``, ``channel``, ``form_id``; identifiers = ``email`` (hidden field or
email answer; anonymous answers have none); occurred_at = ``submitted_at``. A response
without a whole-number score from 0 to 10 gives no record but the reason.
"""

from __future__ import annotations

from typing import Any

from cdp_core import Record, RecordKind

from cdp_typeform.api import ResponseItem, TypeformConfig


def response_record(item: ResponseItem, config: TypeformConfig, stream: str) -> tuple[Record | None, str]:
    """The response's ``nps_response`` record and ``""``, or None and why it gives none."""
    answers = item.answers or []
    score_answer = next((a for a in answers if a.matches(config.score_field)), None)
    if score_answer is None:
        return None, f"response {item.token} has no answer to the score field {config.score_field!r}"
    score = _score(score_answer.value())
    if score is None:
        return None, (
            f"response {item.token}: the score field {config.score_field!r} answered "
            f"{score_answer.value()!r}, not a whole number from 0 to 10"
        )
    when = item.submitted_at or item.landed_at
    data: dict[str, Any] = {
        "score": score,
        "comment": _text(_find(item, config.comment_field, hidden=False)),
        "survey": config.survey or config.form_id,
        "channel": _text(_find(item, config.channel_field)) or config.channel,
        "form_id": config.form_id,
    }
    identifiers: dict[str, str] = {}
    email = _email(item, config)
    if email:
        identifiers["email"] = email
    record = Record(
        stream=stream,
        kind=RecordKind.nps_response,
        key=item.token,
        data=data,
        identifiers=identifiers,
        occurred_at=when,
    )
    return record, ""


def _find(item: ResponseItem, name: str | None, *, hidden: bool = True) -> Any:
    """A hidden field's value, else the answer to the question with that ref or id."""
    if not name:
        return None
    if hidden and item.hidden and _text(item.hidden.get(name)):
        return item.hidden[name]
    answer = next((a for a in item.answers or [] if a.matches(name)), None)
    return answer.value() if answer is not None else None


def _email(item: ResponseItem, config: TypeformConfig) -> str | None:
    if config.email_field:
        value = _find(item, config.email_field)
    else:
        value = (item.hidden or {}).get("email")
        if not _looks_like_email(value):
            value = next((a.value() for a in item.answers or [] if a.type == "email"), None)
    return value.strip() if _looks_like_email(value) else None


def _score(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value != int(value) or not 0 <= value <= 10:
        return None
    return int(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _looks_like_email(value: Any) -> bool:
    """A usable address: a hidden field left empty, or Typeform's ``xxxxx`` placeholder, is none."""
    if not isinstance(value, str):
        return False
    local, at, domain = value.strip().partition("@")
    return bool(at and local and "." in domain and " " not in value.strip())
