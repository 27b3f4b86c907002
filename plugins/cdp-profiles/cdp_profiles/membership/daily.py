"""The daily recompute the scheduler runs (``cdp_register_jobs``): time windows move even when no record arrives.

"Orders in the last 90 days" changes at midnight; a sync refreshes the profiles it
touched, and this job everyone, once a day, as ``cdp segments refresh`` does.
"""

from __future__ import annotations

from typing import Any

from cdp_core.jobs import Job

SCHEDULE = "15 3 * * *"
"""03:15 UTC, every day: after midnight in Europe and the Americas' evening syncs, before the working day."""


def refresh_everyone(config: Any) -> str | None:
    """``cdp segments refresh`` for the scheduler; nothing to do without segments or computed traits."""
    from cdp_profiles.membership.engine import configured, rules_of
    from cdp_profiles.membership.refresh import refresh
    from cdp_profiles.store.schema import job_store

    if not configured(config):
        return "no segments or computed traits configured"
    with job_store(config) as engine:
        result = refresh(engine, rules_of(config))
    members = ", ".join(f"{c.segment} {c.members:,} (+{c.entered:,}/-{c.left:,})" for c in result.segments)
    return f"computed traits: {result.computed_rows:,} values; segments: {members or 'none'}"


SEGMENTS_REFRESH = Job(
    schedule=SCHEDULE,
    run=refresh_everyone,
    description="recompute computed traits for everyone and every segment's membership (time windows move)",
)
