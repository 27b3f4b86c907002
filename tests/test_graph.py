"""graph.toposort: the order sync graphs run in, and the cycle it reports."""

from __future__ import annotations

from cdp_core.graph import toposort


def test_order_follows_the_config_among_ready_nodes() -> None:
    # "late" is declared first but reads from "early": it must wait; "free" keeps its place.
    order, cycle = toposort({"late": ["early"], "free": [], "early": []})
    assert (order, cycle) == (["free", "early", "late"], [])


def test_unknown_inputs_are_ignored() -> None:
    assert toposort({"a": ["nowhere"], "b": ["a"]}) == (["a", "b"], [])


def test_cycle_is_a_path_in_data_flow_order_starting_at_the_smallest_name() -> None:
    # c reads b, b reads a, a reads c: data flows a -> b -> c -> a.
    order, cycle = toposort({"c": ["b"], "b": ["a"], "a": ["c"], "out": ["c"]})
    assert order == []
    assert cycle == ["a", "b", "c", "a"]


def test_a_node_reading_itself_is_a_cycle() -> None:
    assert toposort({"a": ["a"]}) == ([], ["a", "a"])
