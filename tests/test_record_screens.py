"""Record screens (hook ``cdp_record_screen``): what a screen drops is never passed on, written or quarantined.

The screen here is a plugin of the test's own: it drops every record whose ``email``
identifier is on its block list, and every quarantine entry whose payload holds such an
address anywhere (a row as read, the text of a line). The kernel knows nothing of why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from cdp_core import Record, Register, hookimpl
from cdp_core.base import Destination, Transform, TransformContext
from cdp_core.cli import app, common
from cdp_core.config import Config, load_config
from cdp_core.plugins import Plugins
from cdp_core.records import JsonValue, Rejected
from cdp_core.retry import Retry
from cdp_core.runinfo import RunInfo
from cdp_core.runner import Runner
from cdp_core.screens import RecordScreen
from cdp_core.store import Checkpoint, SystemStore
from cdp_core.testing import COLLECTOR_SERVICE, Collector, kit_plugin, load_test_plugins, run_graph, to_toml

BLOCKED = "gone@example.org"


def strings(value: JsonValue) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


class BlockScreen(RecordScreen):
    closed = 0

    def __init__(self, blocked: set[str]) -> None:
        self.blocked = blocked

    def keep(self, records: list[Record]) -> list[Record]:
        return [r for r in records if r.identifiers.get("email") not in self.blocked]

    def suppresses(self, rejected: Rejected) -> bool:
        return any(b in s for s in strings(rejected.raw) for b in self.blocked)

    def close(self) -> None:
        BlockScreen.closed += 1


class TagTransform(Transform):
    """Gives the record of ``data.alias_of`` that address as its email (a transform adding an identifier)."""

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        for record in batch:
            if "alias_of" in record.data:
                record.identifiers["email"] = record.data["alias_of"]
        return batch


class PickyTransform(Transform):
    """Rejects every record with ``data.bad``."""

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        out = []
        for record in batch:
            if record.data.get("bad"):
                ctx.reject(record, "bad record")
            else:
                out.append(record)
        return out


class RefusingDestination(Destination):
    """Refuses (quarantines) every record with ``data.refuse``; keeps the rest in memory."""

    written: ClassVar[list[str]] = []

    def write(self, batch: list[Record], checkpoint: Checkpoint) -> None:
        for record in batch:
            if record.data.get("refuse"):
                checkpoint.reject(record, "refused by the vendor")
            else:
                RefusingDestination.written.append(record.key)


class RecordsOnlyScreen(BlockScreen):
    def suppresses(self, rejected: Rejected) -> bool:
        return False


class ScreenPlugin:
    def __init__(self, blocked: set[str] | None = None, fail: bool = False, records_only: bool = False) -> None:
        self.blocked = blocked if blocked is not None else {BLOCKED}
        self.fail = fail
        self.records_only = records_only
        self.asked: list[str] = []

    @hookimpl
    def cdp_record_screen(self, config: Config, graph: str) -> RecordScreen | None:
        self.asked.append(graph)
        if self.fail:
            raise RuntimeError("the block list cannot be read")
        if not self.blocked:
            return None
        return RecordsOnlyScreen(self.blocked) if self.records_only else BlockScreen(self.blocked)

    @hookimpl
    def cdp_register_transforms(self, register: Register) -> None:
        register("tag", TagTransform)
        register("picky", PickyTransform)

    @hookimpl
    def cdp_register_destinations(self, register: Register) -> None:
        register("refusing", RefusingDestination)


class RejectWatcher:
    def __init__(self) -> None:
        self.seen: list[tuple[str, JsonValue]] = []

    @hookimpl
    def cdp_record_rejected(self, run: RunInfo, node: str, rejected: Rejected) -> None:
        self.seen.append((node, rejected.raw))


PEOPLE: list[dict[str, Any]] = [
    {"id": "1", "email": "ana@example.org"},
    {"id": "2", "email": BLOCKED},  # dropped at the source
    {"id": "3", "email": "ben@example.org", "alias_of": BLOCKED},  # dropped at the destination, after the tag
    {"id": "", "email": BLOCKED},  # rejected by the source (no key): dropped, not quarantined
    {"id": "", "email": "cleo@example.org"},  # rejected by the source: quarantined
    {"id": "6", "email": "dan@example.org", "bad": True},  # rejected by the transform: quarantined
    {"id": "7", "email": "eve@example.org", "bad": True, "note": f"was {BLOCKED}"},  # rejected by the transform: dropped
    {"id": "8", "email": "fay@example.org", "refuse": True},  # refused by the destination: quarantined
    {"id": "9", "email": "gil@example.org", "refuse": True, "alias_of": BLOCKED},  # dropped before the write
    {"id": "10", "email": "hal@example.org", "refuse": True, "cc": BLOCKED},  # refused, then dropped
]


def graph(people: list[dict[str, Any]] = PEOPLE, destination: str = "collect") -> str:
    return f"""
[connectors.src]
type = "list_source"
page_size = 4
streams = {to_toml({"people": {"records": people, "identifiers": {"email": "email"}}})}

[connectors.out]
type = "{destination}"

[syncs.main.nodes.people]
source = "src.people"

[syncs.main.nodes.tag]
transform = "tag"
inputs = ["people"]

[syncs.main.nodes.check]
transform = "picky"
inputs = ["tag"]

[syncs.main.nodes.out]
destination = "out"
inputs = ["check"]
"""


def plugins(*extra: Any) -> Plugins:
    return load_test_plugins(kit_plugin, *extra)


def quarantine(tmp_path: Path) -> list[dict[str, Any]]:
    return SystemStore(f"sqlite:///{tmp_path}/store.sqlite").quarantine(limit=1000)


def test_a_screen_drops_records_at_the_source_and_before_each_write(tmp_path: Path) -> None:
    screen = ScreenPlugin()
    collector = Collector()
    people = [p for p in PEOPLE if p["id"] and not p.get("bad") and not p.get("refuse")]
    run = run_graph(tmp_path, graph(people), plugins(("screen", screen)), collector=collector)
    assert run.status == "succeeded", run.error
    assert screen.asked == ["main"]
    assert collector.keys("out") == ["1"]
    source, out = run.nodes["people"], run.nodes["out"]
    assert (source.records_out, source.rejected, source.suppressed) == (2, 0, 1)
    assert (out.records_in, out.records_out, out.rejected, out.suppressed) == (2, 1, 0, 1)
    assert run.totals().suppressed == 2
    assert BlockScreen.closed >= 1


def test_no_node_quarantines_a_suppressed_payload_and_each_counts_what_it_dropped(tmp_path: Path) -> None:
    RefusingDestination.written = []
    watcher = RejectWatcher()
    run = run_graph(tmp_path, graph(destination="refusing"), plugins(("screen", ScreenPlugin()), ("watch", watcher)))
    assert run.status == "succeeded", run.error
    assert RefusingDestination.written == ["1"]
    rows = quarantine(tmp_path)
    assert BLOCKED not in json.dumps([row["payload"] for row in rows])
    assert sorted((row["node"], row["reason"].split(": ")[-1]) for row in rows) == [
        ("check", "bad record"), ("out", "refused by the vendor"), ("people", "missing key field 'id'"),
    ]  # fmt: skip
    assert BLOCKED not in json.dumps(watcher.seen) and len(watcher.seen) == 3
    nodes = run.nodes
    assert (nodes["people"].records_out, nodes["people"].rejected, nodes["people"].suppressed) == (7, 1, 2)
    assert (nodes["check"].records_in, nodes["check"].rejected, nodes["check"].suppressed) == (7, 1, 1)
    out = nodes["out"]
    assert (out.records_in, out.records_out, out.rejected, out.suppressed) == (5, 1, 1, 3)
    assert out.records_in == out.records_out + out.rejected + out.held_back_total + out.suppressed
    assert run.totals().rejected == 3 and run.totals().suppressed == 6
    # The counts saved with the run while it ran (the checkpoint's progress) say the same.
    [saved] = SystemStore(f"sqlite:///{tmp_path}/store.sqlite").runs("main", 1)
    assert {n: (s.rejected, s.suppressed) for n, s in saved.nodes.items()} == {
        n: (s.rejected, s.suppressed) for n, s in nodes.items()
    }


def test_without_a_screen_everything_goes_through_as_before(tmp_path: Path) -> None:
    RefusingDestination.written = []
    screen = ScreenPlugin(blocked=set())
    run = run_graph(tmp_path, graph(destination="refusing"), plugins(("screen", screen)))
    assert run.status == "succeeded", run.error
    assert screen.asked == ["main"]
    assert RefusingDestination.written == ["1", "2", "3"]
    assert len(quarantine(tmp_path)) == 7
    assert run.totals().suppressed == 0 and run.totals().rejected == 7


def test_a_screen_that_cannot_be_built_fails_the_run_before_anything_is_read(tmp_path: Path) -> None:
    collector = Collector()
    run = run_graph(tmp_path, graph(), plugins(("screen", ScreenPlugin(fail=True))), collector=collector)
    assert run.status == "failed" and "the block list cannot be read" in (run.error or "")
    assert collector.keys("out") == [] and quarantine(tmp_path) == []
    assert run.nodes["people"].records_out == 0


def test_a_quarantine_retry_drops_suppressed_entries_and_deletes_their_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite"
    loaded = plugins(("screen", ScreenPlugin()))
    system = SystemStore(url).create(loaded.migrations)
    # Quarantined before the address was suppressed: at the source (a row as read), at the transform
    # and at the destination (whole records).
    rejects = [
        ("people", Rejected(reason="missing key", raw={"id": "", "email": BLOCKED})),
        ("check", Rejected(reason="bad", raw=Record(stream="src.people", key="2", identifiers={"email": BLOCKED}).raw())),
        ("out", Rejected(reason="down", raw=Record(stream="src.people", key="3", data={"note": BLOCKED}).raw())),
        ("out", Rejected(reason="down", raw=Record(stream="src.people", key="4", identifiers={"email": "ana@example.org"}).raw())),
    ]
    system.commit(Checkpoint("main", "r0", {}, rejects))
    path = tmp_path / "connectors.toml"
    path.write_text(f'[store]\nurl = "{url}"\n{graph()}', encoding="utf-8")
    collector = Collector()
    runner = Runner(load_config(path, loaded), loaded, system, services={COLLECTOR_SERVICE: collector})
    run = runner.run("main", retry=Retry(system.quarantined(graph="main")))
    assert run.status == "succeeded", run.error
    assert collector.keys("out") == ["4"]
    assert {n: s.suppressed for n, s in run.nodes.items() if s.suppressed} == {"people": 1, "check": 1, "out": 1}
    assert system.quarantine(limit=100) == []


def test_a_retried_record_is_screened_at_the_transform_it_enters(tmp_path: Path) -> None:
    """With a screen that judges records only, a retried record is dropped where it re-enters the graph."""
    url = f"sqlite:///{tmp_path}/store.sqlite"
    loaded = plugins(("screen", ScreenPlugin(records_only=True)))
    system = SystemStore(url).create(loaded.migrations)
    kept = Record(stream="src.people", key="5", identifiers={"email": "ana@example.org"}).raw()
    gone = Record(stream="src.people", key="6", identifiers={"email": BLOCKED}).raw()
    system.commit(Checkpoint("main", "r0", {}, [("check", Rejected(reason="old", raw=raw)) for raw in (kept, gone)]))
    path = tmp_path / "connectors.toml"
    path.write_text(f'[store]\nurl = "{url}"\n{graph()}', encoding="utf-8")
    collector = Collector()
    runner = Runner(load_config(path, loaded), loaded, system, services={COLLECTOR_SERVICE: collector})
    run = runner.run("main", retry=Retry(system.quarantined(graph="main")))
    assert run.status == "succeeded", run.error
    assert collector.keys("out") == ["5"]
    check = run.nodes["check"]
    assert (check.records_in, check.records_out, check.suppressed) == (2, 1, 1)
    assert system.quarantine(limit=100) == []


def test_suppressed_counts_are_saved_with_the_run_and_shown_by_cdp_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = plugins(("screen", ScreenPlugin()))
    run = run_graph(tmp_path, graph(), loaded)
    monkeypatch.setattr(common, "plugins", lambda: loaded)
    config = str(tmp_path / "connectors.toml")
    [shown] = json.loads(CliRunner().invoke(app, ["runs", "-c", config, "--json"]).stdout)
    assert shown["nodes"]["people"]["suppressed"] == run.nodes["people"].suppressed == 2
    table = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["runs", "-c", config]).stdout
    assert "suppressed" in table
    assert f"{run.id[:8]} people: suppressed: 2" in table
