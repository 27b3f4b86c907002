"""Export gates (hook ``cdp_export_gate``): a destination node that serves a purpose gets only what its gates keep.

The gate here is a plugin of the test's own: it holds back records whose ``data.optout``
is true for the purpose it was asked about. The kernel knows nothing of consent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from cdp_core import Record, Register, hookimpl
from cdp_core.base import ConnectorContext
from cdp_core.cli import app, common
from cdp_core.config import ConfigError, load_config
from cdp_core.gates import ExportGate, GateResult
from cdp_core.plugins import Plugins
from cdp_core.records import Rejected
from cdp_core.retry import Retry
from cdp_core.runner import Runner
from cdp_core.store import Checkpoint, SystemStore
from cdp_core.testing import (
    COLLECTOR_SERVICE,
    CollectingDestination,
    Collector,
    kit_plugin,
    load_test_plugins,
    run_graph,
    to_toml,
)


class OptOutGate(ExportGate):
    closed: ClassVar[list[str]] = []

    def __init__(self, purpose: str, node: str) -> None:
        self.purpose = purpose
        self.node = node

    def check(self, batch: list[Record]) -> GateResult:
        kept = [r for r in batch if self.purpose not in r.data.get("optout", [])]
        held = len(batch) - len(kept)
        return kept, ({f"no {self.purpose} consent": held} if held else {})

    def close(self) -> None:
        OptOutGate.closed.append(self.node)


class GatePlugin:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str, str]] = []

    @hookimpl
    def cdp_export_gate(self, context: ConnectorContext, graph: str, node: str, purpose: str) -> ExportGate | None:
        self.asked.append((context.name, graph, node, purpose))
        return OptOutGate(purpose, node)


class AdsDestination(CollectingDestination):
    """A destination type whose exports serve ``ads`` unless the graph says otherwise."""

    purpose = "ads"


class AdsPlugin:
    @hookimpl
    def cdp_register_destinations(self, register: Register) -> None:
        register("ads_collect", AdsDestination)


class MiscountingGate(ExportGate):
    def check(self, batch: list[Record]) -> GateResult:
        return batch[1:], {}


PEOPLE = [
    {"id": "1", "optout": []},
    {"id": "2", "optout": ["ads"]},
    {"id": "3", "optout": ["email", "ads"]},
    {"id": "4", "optout": ["email"]},
]


def graph(destination_type: str = "collect", purpose: str | None = None, people: list[dict[str, Any]] = PEOPLE) -> str:
    node_purpose = f'purpose = "{purpose}"\n' if purpose else ""
    return f"""
[connectors.src]
type = "list_source"
page_size = 3
streams = {to_toml({"people": {"records": people}})}

[connectors.out]
type = "{destination_type}"

[syncs.main.nodes.people]
source = "src.people"

[syncs.main.nodes.out]
destination = "out"
inputs = ["people"]
{node_purpose}"""


def with_gate(gate: GatePlugin | None = None) -> Plugins:
    extra: list[Any] = [kit_plugin, ("ads_plugin", AdsPlugin())]
    if gate is not None:
        extra.append(("gate_plugin", gate))
    return load_test_plugins(*extra)


def test_a_purpose_on_the_node_gates_every_batch_and_counts_what_was_held_back(tmp_path: Path) -> None:
    gate = GatePlugin()
    collector = Collector()
    run = run_graph(tmp_path, graph(purpose="email"), with_gate(gate), collector=collector)
    assert run.status == "succeeded", run.error
    assert collector.keys("out") == ["1", "2"]
    assert gate.asked == [("out", "main", "out", "email")]
    out = run.nodes["out"]
    assert out.held_back == {"no email consent": 2}
    assert (out.records_in, out.records_out, out.rejected, out.held_back_total) == (4, 2, 0, 2)
    totals = run.totals()
    assert totals.read == totals.written + totals.rejected + totals.held_back == 4
    assert "out" in OptOutGate.closed


def test_the_destination_types_default_purpose_applies_and_the_node_may_replace_it(tmp_path: Path) -> None:
    gate = GatePlugin()
    collector = Collector()
    run = run_graph(tmp_path, graph("ads_collect"), with_gate(gate), collector=collector)
    assert collector.keys("out") == ["1", "4"] and run.nodes["out"].held_back == {"no ads consent": 2}
    again = Collector()
    (tmp_path / "email").mkdir()
    run = run_graph(tmp_path / "email", graph("ads_collect", "email"), with_gate(gate), collector=again)
    assert again.keys("out") == ["1", "2"] and run.nodes["out"].held_back == {"no email consent": 2}
    assert [purpose for *_, purpose in gate.asked] == ["ads", "email"]


def test_a_node_without_a_purpose_is_not_gated(tmp_path: Path) -> None:
    gate = GatePlugin()
    collector = Collector()
    run = run_graph(tmp_path, graph(), with_gate(gate), collector=collector)
    assert collector.keys("out") == ["1", "2", "3", "4"] and run.nodes["out"].held_back == {}
    assert gate.asked == []


def test_held_back_counts_are_saved_with_the_run_and_shown_by_cdp_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = with_gate(GatePlugin())
    run = run_graph(tmp_path, graph(purpose="ads"), plugins)
    [saved] = SystemStore(f"sqlite:///{tmp_path}/store.sqlite").runs("main", 5)
    assert saved.id == run.id and saved.nodes["out"].held_back == {"no ads consent": 2}
    assert saved.totals().held_back == 2
    monkeypatch.setattr(common, "plugins", lambda: plugins)
    config = str(tmp_path / "connectors.toml")
    [shown] = json.loads(CliRunner().invoke(app, ["runs", "-c", config, "--json"]).stdout)
    assert shown["nodes"]["out"]["held_back"] == {"no ads consent": 2}
    table = CliRunner().invoke(app, ["runs", "-c", config]).stdout
    assert "held back" in table
    assert f"{run.id[:8]} out: held back: no ads consent: 2" in table


def test_a_purpose_on_a_node_that_is_not_a_destination_is_a_config_error(tmp_path: Path) -> None:
    text = graph().replace('[syncs.main.nodes.people]\nsource = "src.people"', '[syncs.main.nodes.people]\nsource = "src.people"\npurpose = "ads"')
    with pytest.raises(ConfigError) as error:
        run_graph(tmp_path, text, with_gate(GatePlugin()))
    assert "syncs.main.nodes.people.purpose: only a destination node serves a purpose; this is a source" in str(error.value)


def test_a_purpose_no_plugin_can_check_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        run_graph(tmp_path, graph(purpose="ads"), with_gate(None))
    assert "syncs.main.nodes.out.purpose: no plugin checks exports against a purpose" in str(error.value)


def test_a_gate_that_miscounts_fails_the_run_before_anything_is_written(tmp_path: Path) -> None:
    class Miscounting:
        @hookimpl
        def cdp_export_gate(self, context: ConnectorContext, graph: str, node: str, purpose: str) -> ExportGate:
            return MiscountingGate()

    collector = Collector()
    run = run_graph(tmp_path, graph(purpose="ads"), load_test_plugins(kit_plugin, ("bad", Miscounting())), collector=collector)
    assert run.status == "failed" and "kept 2 of 3 records but counted 0 held back" in (run.error or "")
    assert collector.keys("out") == []


def test_an_explicit_purpose_fails_the_run_when_no_gate_is_returned(tmp_path: Path) -> None:
    class Declines:
        @hookimpl
        def cdp_export_gate(self, context: ConnectorContext, graph: str, node: str, purpose: str) -> None:
            return None

    collector = Collector()
    run = run_graph(tmp_path, graph(purpose="ads"), load_test_plugins(kit_plugin, ("declines", Declines())), collector=collector)
    assert run.status == "failed" and "serves purpose 'ads', but no plugin checks it" in (run.error or "")
    assert collector.keys("out") == []


def test_a_quarantine_retry_goes_through_the_gate_too(tmp_path: Path) -> None:
    plugins = with_gate(GatePlugin())
    system = SystemStore(f"sqlite:///{tmp_path}/store.sqlite").create(plugins.migrations)
    # Everyone in quarantine at the destination node, as a failed delivery would leave them.
    rejects = [("out", Rejected(reason="down", raw=Record(stream="src.people", key=p["id"], data=p).raw())) for p in PEOPLE]
    system.commit(Checkpoint("main", "r0", {}, rejects))
    path = tmp_path / "connectors.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/store.sqlite"\n{graph(purpose="ads")}', encoding="utf-8")
    collector = Collector()
    runner = Runner(load_config(path, plugins), plugins, system, services={COLLECTOR_SERVICE: collector})
    run = runner.run("main", retry=Retry(system.quarantined(graph="main")))
    assert run.status == "succeeded", run.error
    assert collector.keys("out") == ["1", "4"]
    assert run.nodes["out"].held_back == {"no ads consent": 2}
