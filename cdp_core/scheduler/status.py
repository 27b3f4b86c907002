"""``cdp scheduler status``: every graph, its schedule, next run time, whether it runs now, and its last run.

The next run time comes from the same trigger the scheduler uses (so it follows
cron's own rules, see triggers.py), given in the graph's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cdp_core.config import Config
from cdp_core.graph import toposort
from cdp_core.scheduler.history import last_run, summary
from cdp_core.scheduler.triggers import build_trigger, describe, next_fire
from cdp_core.store import SystemStore
from cdp_core.store.leases import Leases


def graph_status(config: Config, system: SystemStore, now: datetime | None = None) -> list[dict[str, Any]]:
    """One entry per graph, dependencies first (the order ``cdp sync --all`` runs them in)."""
    now = now or datetime.now(UTC)
    leases = Leases(system.engine).current()
    order, _ = toposort({name: graph.config.depends_on for name, graph in config.graphs.items()})
    entries = []
    for name in order:
        graph = config.graphs[name].config
        trigger = build_trigger(graph)
        fire = next_fire(trigger, now) if trigger is not None else None
        lease = leases.get(name)
        entries.append(
            {
                "graph": name,
                "schedule": graph.schedule,
                "every": graph.every,
                "timezone": graph.timezone,
                "depends_on": list(graph.depends_on),
                "retries": graph.retries,
                "trigger": describe(graph),
                "next_run": fire.isoformat() if fire is not None else None,
                "running": lease.to_dict() if lease is not None else None,
                "last_run": summary(last_run(system, name)),
            }
        )
    return entries
