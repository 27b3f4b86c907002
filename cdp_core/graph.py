"""Sync graphs: a DAG of source streams, transforms and destinations, validated whole.

Validation reports every problem with its key path: an unknown node or
connector, a transform or destination without input, a source with inputs, a
cycle, bad options, a bad schedule, an unknown ``depends_on``.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from cdp_core.base import ConnectorContext, PluginConfig, Source
from cdp_core.keypaths import PathPart, did_you_mean, format_path, unsafe_name, validation_messages

if TYPE_CHECKING:
    from cdp_core.config import Connector, GraphConfig, NodeConfig
    from cdp_core.plugins import Plugins


@dataclass
class GraphIssue:
    parts: tuple[Any, ...]
    message: str
    line: int | None = None

    @property
    def path(self) -> str:
        return format_path(self.parts)


@dataclass
class Node:
    """A validated node: its role, what it refers to, its inputs and its parsed options."""

    name: str
    role: str
    ref: str
    inputs: list[str]
    options: PluginConfig | None = None
    children: list[str] = field(default_factory=list)
    purpose: str | None = None
    """A destination node's own ``purpose``; :func:`cdp_core.gates.served_purpose` adds its type's default."""

    @property
    def connector(self) -> str:
        return self.ref.split(".", 1)[0]

    @property
    def stream(self) -> str:
        return self.ref.split(".", 1)[1]


@dataclass
class SyncGraph:
    name: str
    config: GraphConfig
    nodes: dict[str, Node]
    order: list[str]
    """Topological order: every node after all its inputs."""

    def sources(self) -> list[Node]:
        return [self.nodes[n] for n in self.order if self.nodes[n].role == "source"]

    def destinations(self) -> list[Node]:
        return [self.nodes[n] for n in self.order if self.nodes[n].role == "destination"]


_INTERVAL = re.compile(r"(\d+)\s*(d|h|m|s)")
_UNIT = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_every(text: str) -> timedelta:
    """``"30s"``, ``"10m"``, ``"1h30m"``, ``"1d"`` -> timedelta; ValueError otherwise."""
    compact = text.replace(" ", "")
    parts = _INTERVAL.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"not an interval: {text!r} (use e.g. 30s, 10m, 1h30m, 1d)")
    delta = timedelta(**{_UNIT[u]: 0 for u in _UNIT})
    for number, unit in parts:
        delta += timedelta(**{_UNIT[unit]: int(number)})
    if delta <= timedelta(0):
        raise ValueError(f"interval must be positive: {text!r}")
    return delta


def build_graphs(
    configs: dict[str, GraphConfig],
    all_names: set[str],
    invalid_nodes: dict[str, set[str]],
    raw_connectors: dict[str, Any],
    connectors: dict[str, Connector],
    plugins: Plugins,
    unavailable: Collection[str] = (),
    sections: Mapping[str, BaseModel] | None = None,
) -> tuple[dict[str, SyncGraph], list[GraphIssue]]:
    """Validate and build every graph; a graph using an ``unavailable`` connector is left out (it will not run).

    :param sections: the plugins' validated sections, in the context a source lists its streams
        with (a source may offer streams its plugin's section defines, such as segments).
    """
    graphs: dict[str, SyncGraph] = {}
    issues: list[GraphIssue] = []
    for name, config in configs.items():
        refs = {n.ref.split(".", 1)[0] for n in config.nodes.values() if n.role != "transform"}
        if refs & set(unavailable):
            continue
        graph = _build_graph(
            name, config, invalid_nodes.get(name, set()), raw_connectors, connectors, plugins, issues, sections or {}
        )
        if graph is not None:
            graphs[name] = graph
    _check_depends_on(configs, all_names, issues)
    return graphs, issues


def _build_graph(
    name: str,
    config: GraphConfig,
    invalid: set[str],
    raw_connectors: dict[str, Any],
    connectors: dict[str, Connector],
    plugins: Plugins,
    issues: list[GraphIssue],
    sections: Mapping[str, BaseModel],
) -> SyncGraph | None:
    prefix: tuple[PathPart, ...] = ("syncs", name)
    start = len(issues)
    _check_schedule(config, prefix, issues)
    if not config.nodes and not invalid:
        issues.append(GraphIssue(prefix + ("nodes",), "a graph needs at least one node"))
    nodes: dict[str, Node] = {}
    for node_name, node_cfg in config.nodes.items():
        node = _build_node(
            node_name, node_cfg, prefix + ("nodes", node_name), raw_connectors, connectors, plugins, issues, sections
        )
        if node is not None:
            nodes[node_name] = node
        else:
            # Reported at the node, or at its connector's own table: the graph's shape
            # checks would only repeat it in other words.
            invalid = invalid | {node_name}
    for node_name, node_cfg in config.nodes.items():
        for i, input_name in enumerate(node_cfg.inputs):
            where = prefix + ("nodes", node_name, "inputs", i)
            if input_name in invalid:
                continue
            if input_name not in config.nodes:
                hint = did_you_mean(input_name, list(config.nodes))
                issues.append(GraphIssue(where, f"unknown node {input_name!r}{hint}; nodes: {', '.join(config.nodes)}"))
            elif config.nodes[input_name].role == "destination":
                issues.append(GraphIssue(where, f"{input_name!r} is a destination; it has no output"))
            elif node_name in nodes:
                if input_name in nodes:
                    nodes[input_name].children.append(node_name)
    order, cycle = toposort({n: c.inputs for n, c in config.nodes.items()})
    if cycle and not invalid:
        issues.append(GraphIssue(prefix + ("nodes", cycle[0]), "cycle: " + " -> ".join(cycle)))
    if len(issues) > start or invalid:
        return None
    for node in nodes.values():
        if node.role != "destination" and not node.children:
            issues.append(GraphIssue(prefix + ("nodes", node.name), f"{node.role} {node.name!r} feeds no node"))
    if not any(n.role == "source" for n in nodes.values()):
        issues.append(GraphIssue(prefix + ("nodes",), "a graph needs at least one source node"))
    if len(issues) > start:
        return None
    return SyncGraph(name=name, config=config, nodes=nodes, order=order)


def _build_node(
    name: str,
    cfg: NodeConfig,
    where: tuple[PathPart, ...],
    raw_connectors: dict[str, Any],
    connectors: dict[str, Connector],
    plugins: Plugins,
    issues: list[GraphIssue],
    sections: Mapping[str, BaseModel],
) -> Node | None:
    role, ref = cfg.role, cfg.ref
    if cfg.purpose is not None:
        if role != "destination":
            issues.append(GraphIssue(where + ("purpose",), f"only a destination node serves a purpose; this is a {role}"))
            return None
        if not plugins.manager.hook.cdp_export_gate.get_hookimpls():
            issues.append(
                GraphIssue(
                    where + ("purpose",),
                    "no plugin checks exports against a purpose (none provides an export gate; "
                    "is the profiles plugin disabled?)",
                )
            )
            return None
    if role == "source":
        if cfg.inputs:
            issues.append(GraphIssue(where + ("inputs",), "a source node takes no inputs"))
        if cfg.options:
            issues.append(GraphIssue(where + ("options",), "a source node takes no options; set them on the connector"))
        connector_name, _, stream_name = ref.partition(".")
        if not stream_name:
            issues.append(GraphIssue(where + ("source",), f"expected CONNECTOR.STREAM, got {ref!r}"))
            return None
        connector = _connector(connector_name, "source", where + ("source",), raw_connectors, connectors, issues)
        if connector is None:
            return None
        try:
            context = ConnectorContext(name=connector_name, sections=sections)
            source: Source = connector.roles["source"].cls(connector.config, context)
            streams = [s.name for s in source.streams()]
        except Exception as exc:  # noqa: BLE001 - a plugin bug is reported where it is used
            issues.append(GraphIssue(where + ("source",), f"source {connector_name!r} cannot list its streams: {exc}"))
            return None
        if stream_name not in streams:
            issues.append(
                GraphIssue(
                    where + ("source",),
                    f"connector {connector_name!r} has no stream {stream_name!r}{did_you_mean(stream_name, streams)}; "
                    f"streams: {', '.join(streams) or 'none'}",
                )
            )
            return None
        # Checked here, where a graph uses the stream: a source's stream names come from
        # its code or its config (a file source's [connectors.X.streams.NAME]).
        bad_name = unsafe_name("stream", stream_name)
        if bad_name:
            issues.append(GraphIssue(where + ("source",), f"connector {connector_name!r}: {bad_name}"))
            return None
        return Node(name, role, ref, [])
    if not cfg.inputs:
        issues.append(GraphIssue(where + ("inputs",), f"a {role} node needs at least one input"))
    if role == "transform":
        reg = plugins.registry.get("transform", ref)
        if reg is None:
            conflict = plugins.registry.conflict_message("transform", ref)
            known = ", ".join(plugins.registry.names("transform"))
            hint = did_you_mean(ref, plugins.registry.names("transform"))
            issues.append(
                GraphIssue(where + ("transform",), conflict or f"unknown transform type {ref!r}{hint}; known: {known or 'none'}")
            )
            return None
        options = _options(reg.cls.config_model, cfg.options, where, issues)
        return Node(name, role, ref, list(cfg.inputs), options) if options is not None else None
    connector = _connector(ref, "destination", where + ("destination",), raw_connectors, connectors, issues)
    if connector is None:
        return None
    options = _options(connector.roles["destination"].cls.options_model, cfg.options, where, issues)
    return Node(name, role, ref, list(cfg.inputs), options, purpose=cfg.purpose) if options is not None else None


def _connector(
    name: str,
    role: str,
    where: tuple[PathPart, ...],
    raw_connectors: dict[str, Any],
    connectors: dict[str, Connector],
    issues: list[GraphIssue],
) -> Connector | None:
    if name not in raw_connectors:
        known = ", ".join(raw_connectors) or "none"
        hint = did_you_mean(name, list(raw_connectors))
        issues.append(GraphIssue(where, f"unknown connector {name!r}{hint}; connectors: {known}"))
        return None
    connector = connectors.get(name)
    if connector is None:
        return None  # its own table is invalid, and already reported
    if role not in connector.roles:
        issues.append(GraphIssue(where, f"connector {name!r} (type {connector.type!r}) is not a {role}"))
        return None
    return connector


def _options(
    model: type[PluginConfig], options: dict[str, Any], where: tuple[PathPart, ...], issues: list[GraphIssue]
) -> PluginConfig | None:
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        # Option values may come from ${ENV}; load_config redacts every message before it leaves.
        for loc, message in validation_messages(exc.errors(include_url=False), where + ("options",), lambda _: False):
            issues.append(GraphIssue(loc, message))
        return None


def _check_schedule(config: GraphConfig, prefix: tuple[PathPart, ...], issues: list[GraphIssue]) -> None:
    try:
        zone = zoneinfo.ZoneInfo(config.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        issues.append(GraphIssue(prefix + ("timezone",), f"unknown time zone {config.timezone!r}"))
        zone = None
    if config.schedule and config.every:
        issues.append(GraphIssue(prefix + ("every",), "set either 'schedule' (cron) or 'every', not both"))
    if config.schedule:
        # The scheduler's own reading of cron (0 and 7 = Sunday, day fields OR-ed), not APScheduler's.
        from cdp_core.scheduler.triggers import cron_trigger

        try:
            cron_trigger(config.schedule, zone or zoneinfo.ZoneInfo("UTC"))
        except ValueError as exc:
            issues.append(GraphIssue(prefix + ("schedule",), f"not a valid cron expression: {exc}"))
    if config.every:
        try:
            parse_every(config.every)
        except ValueError as exc:
            issues.append(GraphIssue(prefix + ("every",), str(exc)))


def _check_depends_on(configs: dict[str, GraphConfig], all_names: set[str], issues: list[GraphIssue]) -> None:
    for name, config in configs.items():
        for i, dep in enumerate(config.depends_on):
            if dep not in all_names:
                issues.append(GraphIssue(("syncs", name, "depends_on", i), f"unknown sync graph {dep!r}"))
            elif dep == name:
                issues.append(GraphIssue(("syncs", name, "depends_on", i), "a graph cannot depend on itself"))
    _, cycle = toposort({n: [d for d in c.depends_on if d in configs] for n, c in configs.items()})
    if cycle and len(cycle) > 2:
        issues.append(GraphIssue(("syncs", cycle[0], "depends_on"), "dependency cycle: " + " -> ".join(cycle)))


def toposort(inputs: dict[str, Iterable[str]]) -> tuple[list[str], list[str]]:
    """Order ``inputs`` (node -> the nodes it reads from) so every node comes after its inputs.

    Returns ``(order, [])``, or ``([], cycle)`` where ``cycle`` is a path such as
    ``["a", "b", "a"]`` (each node an input of the next). Names that are not keys
    of ``inputs`` are ignored: validation reports them elsewhere.
    """
    sorter: TopologicalSorter[str] = TopologicalSorter()
    # Every node first, in config order: graphlib hands out ready nodes in the order
    # it first saw them, so the order follows the config, not the order inputs are named in.
    for node in inputs:
        sorter.add(node)
    for node, ins in inputs.items():
        sorter.add(node, *(i for i in ins if i in inputs))
    try:
        sorter.prepare()
    except CycleError as exc:
        found: list[str] = exc.args[1][:-1]
        # graphlib may enter the cycle anywhere: start at the smallest name, so one
        # config always gets one message.
        start = found.index(min(found))
        path = found[start:] + found[:start]
        return [], path + [path[0]]
    order: list[str] = []
    while sorter.is_active():
        for node in sorter.get_ready():
            order.append(node)
            sorter.done(node)
    return order, []
