"""Forgetting a person at a destination: the operation a destination may offer (docs/privacy.md).

When a person is forgotten in the store, every destination connector is asked to forget
them too. A destination that can sets ``supports_forget = True`` and implements
:meth:`cdp_core.Destination.forget`; the privacy product calls it for each forget request,
outside any sync run, and again with backoff while the answer is :attr:`ForgetState.retry`.
A destination that cannot (a file, say) is listed as not supported, so the operator knows
to act by hand.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from cdp_core.http.errors import HttpError

MAX_ANSWER = 300
"""The longest answer kept (the vendor's message is cut)."""
_EMAIL = re.compile(r"[^\s@<>\"'(),;:]+@[^\s@<>\"'(),;:]+\.[A-Za-z]{2,}")
_DIGEST = re.compile(r"\b[0-9a-fA-F]{32,}\b")


class AudienceRow(BaseModel):
    """A row this destination was last sent for the person (its audience mirror), as it was sent."""

    model_config = ConfigDict(extra="forbid")

    audience_id: str
    row: Any


class ForgetSubject(BaseModel):
    """What a destination is told about the person to forget: what it needs to find them."""

    model_config = ConfigDict(extra="forbid")

    identifiers: dict[str, list[str]] = Field(default_factory=dict)
    """Identifier type -> the person's normalized values (``email``, ``phone``, ``hubspot_id``...)."""
    audience_rows: list[AudienceRow] = Field(default_factory=list)
    """For an audience destination: the rows its mirror holds for the person, per audience."""


class ForgetState(StrEnum):
    done = "done"
    """The vendor erased the person, or holds nothing of them."""
    retry = "retry"
    """A passing failure (throttled, a 5xx, the network): ask again later."""
    failed = "failed"
    """The vendor refused for good (no permission, a bad request): the operator must act."""


class ForgetResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: ForgetState
    answer: str = ""
    """What the vendor said, short (status code and message); never a secret, never an identifier."""
    retry_after: float | None = None
    """Seconds the vendor asked to wait (a 429's ``Retry-After``), for ``retry``."""


def scrub(text: str, subject: ForgetSubject) -> str:
    """``text`` (a vendor's answer) without the person: their identifiers, any email address or hex digest
    (the hashes sent, a subscriber hash) replaced, whitespace folded, cut to :data:`MAX_ANSWER` characters."""
    values = sorted({v for vs in subject.identifiers.values() for v in vs if v and len(v) >= 3}, key=len, reverse=True)
    for value in values:
        text = re.sub(re.escape(value), "<identifier>", text, flags=re.IGNORECASE)
    text = _DIGEST.sub("<hash>", _EMAIL.sub("<email>", text))
    text = " ".join(text.split())
    return text if len(text) <= MAX_ANSWER else text[: MAX_ANSWER - 3] + "..."


def result_of_error(
    error: HttpError, subject: ForgetSubject, vendor: str = "", message: str | None = None
) -> ForgetResult:
    """The :class:`ForgetResult` of a request the core's HTTP client raised for (the usual mapping).

    No response (network, timeout), 429 and 5xx (or a plugin's :class:`RateLimited`): ``retry`` (a 429's or 503's ``Retry-After``
    in ``retry_after``); any other 4xx (401/403 included: the operator must fix the
    credentials): ``failed``. The answer is ``vendor``, the status and the vendor's message
    (``message``, else the error's own detail), scrubbed of the person and never a secret:
    the client's error text is redacted already. Send forget requests with
    ``idempotent=False`` so the client answers at once and the privacy product's backoff
    (hours, across runs) does the retrying.
    """
    from cdp_core.http.client import retry_after
    from cdp_core.http.errors import NetworkError, RateLimited, ServerError

    status = error.status
    detail = error.detail if message is None else f"{status} {message}".strip()
    answer = scrub(f"{vendor} {detail}".strip() if vendor else detail, subject)
    passing = isinstance(error, (NetworkError, RateLimited, ServerError))  # Meta's throttling comes as a 400
    if passing or status is None or status == 429 or status >= 500:
        wait = retry_after(error.response) if error.response is not None else None
        return ForgetResult(state=ForgetState.retry, answer=answer, retry_after=wait)
    return ForgetResult(state=ForgetState.failed, answer=answer)


def combine(results: list[ForgetResult], empty: str = "nothing to ask for") -> ForgetResult:
    """One result for several requests about one person: ``failed`` if any failed, else ``retry`` if any
    must be asked again (the longest ``retry_after``), else ``done``; the answers joined."""
    if not results:
        return ForgetResult(state=ForgetState.done, answer=empty)
    states = {r.state for r in results}
    state = next(s for s in (ForgetState.failed, ForgetState.retry, ForgetState.done) if s in states)
    waits = [r.retry_after for r in results if r.state is ForgetState.retry and r.retry_after is not None]
    answers = list(dict.fromkeys(r.answer for r in results if r.answer))
    answer = "; ".join(answers)
    if len(answer) > MAX_ANSWER:
        answer = answer[: MAX_ANSWER - 3] + "..."
    return ForgetResult(state=state, answer=answer, retry_after=max(waits) if waits else None)
