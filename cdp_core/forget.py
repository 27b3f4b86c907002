"""Forgetting a person at a destination: the operation a destination may offer (docs/privacy.md).

When a person is forgotten in the store, every destination connector is asked to forget
them too. A destination that can sets ``supports_forget = True`` and implements
:meth:`cdp_core.Destination.forget`; the privacy product calls it for each forget request,
outside any sync run, and again with backoff while the answer is :attr:`ForgetState.retry`.
A destination that cannot (a file, say) is listed as not supported, so the operator knows
to act by hand.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
