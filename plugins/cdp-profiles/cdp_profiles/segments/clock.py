"""When rules are evaluated: now, or the moment ``$CDP_AS_OF`` names (docs/segments.md, "Evaluation time").

Time windows (``days = 90``) end at this moment. Setting it re-evaluates segments and
computed traits as they stood at a past date (a backfill, an audit, a demo on data of
another year); unset, it is the current time.
"""

from __future__ import annotations

import os
from datetime import datetime

from cdp_core.timeutil import as_utc, utc_now

AS_OF_ENV = "CDP_AS_OF"


class AsOfError(ValueError):
    """``$CDP_AS_OF`` is not an ISO 8601 date or date-time."""


def parse_as_of(text: str) -> datetime:
    """An ISO date (its midnight, UTC) or date-time (UTC when it has no offset)."""
    try:
        return as_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise AsOfError(f"not an ISO 8601 date or date-time: {text!r} (e.g. 2024-07-01); it sets when segments are evaluated") from None


def evaluation_time() -> datetime:
    """The moment rules are evaluated at: ``$CDP_AS_OF`` when set, else now (UTC)."""
    text = os.environ.get(AS_OF_ENV, "").strip()
    return parse_as_of(text) if text else utc_now()
