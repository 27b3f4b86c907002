"""``cdp scheduler status``: every graph, its schedule, next run time, whether it runs now, and its last run.

The next run time comes from the same trigger the scheduler uses (so it follows
cron's own rules, see triggers.py), given in the graph's time zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from cdp_core.config import Config, GraphConfig
from cdp_core.graph import toposort
from cdp_core.scheduler.history import last_run, summary
from cdp_core.scheduler.triggers import build_trigger, describe, next_fire
from cdp_core.store import SystemStore
from cdp_core.store.leases import Leases
from cdp_core.timeutil import utc_now


def graph_status(config: Config, system: SystemStore, now: datetime | None = None) -> list[dict[str, Any]]:
    """One entry per graph of connectors.toml, dependencies first (the order ``cdp sync --all`` runs them in).

    Schedules are read from every ``[syncs.*]`` table, also of a graph that cannot run
    now (a connector's secret is missing: ``unavailable`` says which) or is disabled.
    """
    now = now or utc_now()
    leases = Leases(system.engine).current()
    schedules = _schedules(config)
    order, _ = toposort({name: graph.depends_on for name, graph in schedules.items()})
    entries = []
    for name in order:
        graph = schedules[name]
        trigger = build_trigger(graph) if graph.enabled else None
        fire = next_fire(trigger, now) if trigger is not None else None
        lease = leases.get(name)
        entries.append(
            {
                "graph": name,
                "enabled": graph.enabled,
                "schedule": graph.schedule,
                "every": graph.every,
                "timezone": graph.timezone,
                "depends_on": list(graph.depends_on),
                "retries": graph.retries,
                "trigger": describe(graph) if graph.enabled else "disabled",
                "next_run": fire.isoformat() if fire is not None else None,
                "unavailable": _unavailable(config, name),
                "running": lease.to_dict() if lease is not None else None,
                "last_run": summary(last_run(system, name)),
            }
        )
    return entries


def _schedules(config: Config) -> dict[str, GraphConfig]:
    graphs = {name: graph.config for name, graph in config.graphs.items()}
    for name, table in config.root.syncs.items():
        if name not in graphs and isinstance(table, dict):
            try:
                graphs[name] = GraphConfig.model_validate({k: v for k, v in table.items() if k != "nodes"})
            except ValidationError:
                continue  # load_config reported it
    return graphs


def _unavailable(config: Config, graph: str) -> list[str] | None:
    """Why a graph cannot run now: the problems of connectors it uses that were left out."""
    if graph in config.graphs:
        return None
    nodes = config.root.syncs.get(graph, {}).get("nodes", {})
    used = {str(n.get("source", "")).split(".", 1)[0] for n in nodes.values() if isinstance(n, dict)}
    used |= {str(n.get("destination")) for n in nodes.values() if isinstance(n, dict) and n.get("destination")}
    return [problem for name in sorted(used & set(config.unavailable)) for problem in config.unavailable[name]] or None
