"""What the operator commands (``cdp state``, ``cdp quarantine``) share: the store they work on, the graph and node they name.

These commands change or read what syncs left behind; none of them creates a store.
A missing, unreadable or foreign store is a one-line error with exit code 1; a graph or
node the config does not have is a usage error (exit 2).
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

from cdp_core.cli import common
from cdp_core.config import Config, GraphConfig, NodeConfig
from cdp_core.plugins import Plugins
from cdp_core.store import SystemStore


def shown_url(url: str) -> str:
    """The store URL as it may be shown: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def existing_store(cfg: Config, loaded: Plugins | None = None, *, create: bool = False) -> SystemStore:
    """The store of ``cfg`` for an operator command (:func:`cdp_core.cli.common.open_store`): exit 1 with one
    line when it cannot be had.

    :param create: make the store when there is none (``cdp state set`` before a first sync).
    """
    return common.open_store(cfg, loaded or common.plugins(), create=create)


def graph_nodes(cfg: Config, graph: str) -> dict[str, NodeConfig]:
    """The nodes of a graph as configured (also of a graph that cannot run now: a secret it needs is not set)."""
    if graph not in cfg.root.syncs:
        known = ", ".join(sorted(cfg.root.syncs)) or "none"
        common.fail(f"no sync graph {graph!r} in {cfg.path}; graphs: {known}")
    return GraphConfig.model_validate(cfg.root.syncs[graph]).nodes  # valid: the config loaded


def check_node(cfg: Config, graph: str, node: str, *, source: bool = False) -> NodeConfig:
    """Node ``node`` of ``graph`` (a source node when ``source``); exit 2 naming the choices when there is none."""
    nodes = graph_nodes(cfg, graph)
    wanted = {n: c for n, c in nodes.items() if c.role == "source"} if source else nodes
    if node not in wanted:
        what = "source node" if source else "node"
        role = f" (it is a {nodes[node].role}: only source nodes have a cursor)" if node in nodes else ""
        common.fail(f"graph {graph!r} has no {what} {node!r}{role}; {what}s: {', '.join(sorted(wanted)) or 'none'}")
    return wanted[node]
