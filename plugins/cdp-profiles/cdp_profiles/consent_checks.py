"""``cdp validate`` for consent: every export of profile data serves a purpose that ``[consent]`` defines.

- A destination node that serves a purpose (its own ``purpose``, or its destination
  type's default) must name one of the purposes in force: an unknown one is an error
  with a did-you-mean.
- A destination node reachable from a profile store source (profile data leaving the
  store) must serve a purpose: when neither the node nor its destination type sets
  one, the error names the key to set, ``syncs.G.nodes.N.purpose``. The profile
  store destination itself needs none (the data stays in the store).
"""

from __future__ import annotations

from cdp_core.config import Config
from cdp_core.gates import served_purpose
from cdp_core.graph import SyncGraph
from cdp_core.keypaths import did_you_mean, format_path

from cdp_profiles.consent import consent_of
from cdp_profiles.identity import Report
from cdp_profiles.profile_store import ProfileStoreDestination, ProfileStoreSource


def check_consent(config: Config, report: Report) -> None:
    purposes = consent_of(config.sections).all_purposes()
    known = ", ".join(purposes) or "none"
    for name, graph in config.graphs.items():
        from_store = _fed_by_the_store(config, graph)
        for node in graph.destinations():
            connector = config.connectors.get(node.ref)
            if connector is None or "destination" not in connector.roles:
                continue
            cls = connector.roles["destination"].cls
            purpose = served_purpose(node, cls)
            where = ("syncs", name, "nodes", node.name, "purpose")
            if purpose is None:
                if node.name in from_store and not issubclass(cls, ProfileStoreDestination):
                    report(
                        where,
                        f"sends profile data from the profile store to {node.ref!r} (type {connector.type!r}), "
                        f"which serves no purpose: set {format_path(where)} to one of: {known} (docs/consent.md)",
                    )
            elif purpose not in purposes:
                hint = did_you_mean(purpose, list(purposes))
                if node.purpose is not None:
                    report(where, f"unknown purpose {purpose!r}{hint}; purposes: {known} (define more in [consent.purposes])")
                else:
                    report(
                        ("syncs", name, "nodes", node.name, "destination"),
                        f"destination type {connector.type!r} serves purpose {purpose!r} by default, which [consent] "
                        f"does not define; set {format_path(where)} to one of: {known}, or add [consent.purposes.{purpose}]",
                    )


def _fed_by_the_store(config: Config, graph: SyncGraph) -> set[str]:
    """The nodes of ``graph`` that records read from a profile store source reach."""
    todo = []
    for node in graph.sources():
        connector = config.connectors.get(node.connector)
        if connector is not None and issubclass(connector.roles["source"].cls, ProfileStoreSource):
            todo.append(node.name)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.nodes[name].children)
    return seen
