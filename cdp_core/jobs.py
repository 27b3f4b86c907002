"""Maintenance jobs a plugin asks the scheduler to run on a cron schedule (``cdp_register_jobs``).

A job is not a sync graph: it reads no source and writes no destination, it keeps
something a plugin stores up to date (the profile product's daily recompute of
computed traits and segments whose time windows move). ``cdp scheduler run`` runs
every registered job on its schedule, under a lease named ``job:NAME`` so that two
schedulers on one store run it once; a job that fails is logged and runs again at its
next slot. Slots missed while no scheduler ran are not made up: the next slot runs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class Job:
    """What a plugin registers: when to run and what.

    :param schedule: a cron expression (five fields, cron's weekdays: 0 = Sunday), in ``timezone``.
    :param run: called with the loaded :class:`cdp_core.config.Config`; returns a one-line summary
        for the log (or None). Skipped by returning early when the config gives it nothing to do.
    """

    schedule: str
    run: Callable[[Any], str | None]
    timezone: str = "UTC"
    description: str = ""


def check_job(name: Any, job: Any) -> None:
    """Raise ValueError for a registration the scheduler cannot use."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"a job name is lowercase letters, digits and '-', starting with a letter: {name!r}")
    if not isinstance(job, Job):
        raise ValueError(f"job {name!r} must be a cdp_core.jobs.Job, got {type(job).__name__}")
    import zoneinfo

    from cdp_core.scheduler.triggers import cron_trigger

    try:
        cron_trigger(job.schedule, zoneinfo.ZoneInfo(job.timezone))
    except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
        raise ValueError(f"job {name!r}: schedule {job.schedule!r} ({job.timezone}): {exc}") from None
