"""The runner: fan-in, fan-out, quarantine, and cursors committed only after every destination is durable."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import text

from cdp_core import Destination, Page, PluginConfig, Record, RecordKind, Register, Source, Stream, Transform, hookimpl
from cdp_core.config import load_config
from cdp_core.plugins import load_plugins
from cdp_core.runinfo import RunStatus
from cdp_core.runner import Runner
from cdp_core.store import Checkpoint, SystemStore

WRITTEN: dict[str, list[list[str]]] = {}
"""What each test destination wrote, by connector name: a list of batches of keys."""


class NumbersConfig(PluginConfig):
    count: int = 10
    page_size: int = 3
    fail_after_pages: int | None = None
    kind: RecordKind = RecordKind.profile


class NumbersStream(Stream):
    cursor_field = "n"

    def __init__(self, name: str, config: NumbersConfig) -> None:
        self.name = name
        self.config = config

    def read(self, cursor: Any) -> Iterator[Page]:
        start = cursor or 0
        pages = 0
        for first in range(start, self.config.count, self.config.page_size):
            if self.config.fail_after_pages is not None and pages == self.config.fail_after_pages:
                raise ConnectionError("vendor went away")
            last = min(first + self.config.page_size, self.config.count)
            records = [
                Record(stream=f"numbers.{self.name}", kind=self.config.kind, key=str(n), data={"n": n}) for n in range(first, last)
            ]
            pages += 1
            yield Page(records, cursor=last)


class NumbersSource(Source):
    config_model = NumbersConfig

    def streams(self) -> Sequence[Stream]:
        return [NumbersStream("items", self.config)]  # type: ignore[arg-type]


class Evens(Transform):
    """Keeps even numbers, rejects multiples of 5, drops the other odd ones."""

    def process(self, batch: list[Record], ctx: Any) -> list[Record]:
        out = []
        for record in batch:
            n = record.data["n"]
            if n % 5 == 0 and n:
                ctx.reject(record, f"{n} is a multiple of 5")
            elif n % 2 == 0:
                record.data["even"] = True
                out.append(record)
        return out


class CollectConfig(PluginConfig):
    fail_on_key: str | None = None


class Collect(Destination):
    config_model = CollectConfig

    def write(self, batch: list[Record], checkpoint: Checkpoint | None = None) -> None:
        if self.config.fail_on_key in {r.key for r in batch}:  # type: ignore[attr-defined]
            raise OSError("disk full")
        WRITTEN.setdefault(self.context.name, []).append([r.key for r in batch])


class StoreLike(Destination):
    """Writes into the store database and commits the checkpoint in the same transaction."""

    config_model = CollectConfig
    commits_checkpoint = True
    accepts: ClassVar[frozenset[RecordKind] | None] = frozenset({RecordKind.profile})

    def write(self, batch: list[Record], checkpoint: Checkpoint | None = None) -> None:
        system = SystemStore(self.context.store_url)
        with system.engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS items (k VARCHAR PRIMARY KEY)"))
            conn.execute(text("INSERT INTO items (k) VALUES (:k)"), [{"k": r.key} for r in batch])
            if checkpoint is not None:
                checkpoint.write(conn)
            if self.config.fail_on_key in {r.key for r in batch}:  # type: ignore[attr-defined]
                raise OSError("crash before commit")
        system.engine.dispose()


class Plugin:
    @hookimpl
    def cdp_register_sources(self, register: Register) -> None:
        register("numbers", NumbersSource)

    @hookimpl
    def cdp_register_transforms(self, register: Register) -> None:
        register("evens", Evens)

    @hookimpl
    def cdp_register_destinations(self, register: Register) -> None:
        register("collect", Collect)
        register("storelike", StoreLike)


def _runner(tmp_path: Path, store_url: str, body: str) -> Runner:
    WRITTEN.clear()
    path = tmp_path / "connectors.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n{body}')
    plugins = load_plugins(entry_points=False, extra=[("test", Plugin())])
    return Runner(load_config(path, plugins, env={}), plugins)


FAN = """
[connectors.a]
type = "numbers"
count = 10
[connectors.b]
type = "numbers"
count = 4
page_size = 2
kind = "event"
[connectors.left]
type = "collect"
[connectors.right]
type = "collect"

[syncs.g.nodes.a]
source = "a.items"
[syncs.g.nodes.b]
source = "b.items"
[syncs.g.nodes.evens]
transform = "evens"
inputs = ["a"]
[syncs.g.nodes.left]
destination = "left"
inputs = ["evens", "b"]
[syncs.g.nodes.right]
destination = "right"
inputs = ["a"]
"""


def test_fan_in_fan_out_counts_and_quarantine(tmp_path: Path, store_url: str) -> None:
    runner = _runner(tmp_path, store_url, FAN)
    run = runner.run("g")
    assert run.status is RunStatus.succeeded, run.error
    left = [k for batch in WRITTEN["left"] for k in batch]
    right = [k for batch in WRITTEN["right"] for k in batch]
    assert sorted(left, key=lambda k: (len(k), k)) == ["0", "0", "1", "2", "2", "3", "4", "6", "8"]
    assert right == [str(n) for n in range(10)]
    stats = run.nodes
    assert (stats["a"].records_out, stats["b"].records_out) == (10, 4)
    assert (stats["evens"].records_in, stats["evens"].records_out, stats["evens"].rejected) == (10, 5, 1)
    assert (stats["left"].records_in, stats["left"].records_out) == (9, 9)
    quarantine = runner.system.quarantine(graph="g")
    assert [(q["node"], q["reason"], q["payload"]["data"]) for q in quarantine] == [("evens", "5 is a multiple of 5", {"n": 5})]
    # fan-out: the transform's in-place change never leaks into the other branch
    assert runner.system.cursor("g", "a") == 10 and runner.system.cursor("g", "b") == 4
    assert [r.id for r in runner.system.runs("g")] == [run.id]


def test_second_run_resumes_from_the_committed_cursor(tmp_path: Path, store_url: str) -> None:
    runner = _runner(tmp_path, store_url, FAN)
    runner.run("g")
    WRITTEN.clear()
    run = runner.run("g")
    assert run.status is RunStatus.succeeded
    assert WRITTEN == {}
    assert run.nodes["a"].records_out == 0


SINGLE = """
[connectors.a]
type = "numbers"
count = 10
page_size = 3
{source_extra}
[connectors.out]
type = "{dest}"
{dest_extra}
[connectors.other]
type = "collect"

[syncs.g.nodes.a]
source = "a.items"
[syncs.g.nodes.out]
destination = "out"
inputs = ["a"]
{more}
"""


def test_failing_source_keeps_the_cursor_at_the_last_committed_page(tmp_path: Path, store_url: str) -> None:
    runner = _runner(tmp_path, store_url, SINGLE.format(source_extra="fail_after_pages = 2", dest="collect", dest_extra="", more=""))
    run = runner.run("g")
    assert run.status is RunStatus.failed
    assert "ConnectionError: vendor went away" in (run.error or "")
    assert run.nodes["a"].error is not None
    assert runner.system.cursor("g", "a") == 6
    assert WRITTEN["out"] == [["0", "1", "2"], ["3", "4", "5"]]
    assert runner.system.runs("g")[0].status is RunStatus.failed


def test_cursor_waits_for_every_destination(tmp_path: Path, store_url: str) -> None:
    more = '[syncs.g.nodes.other]\ndestination = "other"\ninputs = ["a"]\n'
    body = SINGLE.format(source_extra="", dest="collect", dest_extra='fail_on_key = "4"', more=more)
    runner = _runner(tmp_path, store_url, body)
    run = runner.run("g")
    assert run.status is RunStatus.failed
    # page 2 (3,4,5) reached one destination but not the other: its cursor is not committed
    assert runner.system.cursor("g", "a") == 3
    body = SINGLE.format(source_extra="", dest="collect", dest_extra="", more=more)
    runner = _runner(tmp_path, store_url, body)
    assert runner.run("g").status is RunStatus.succeeded
    assert [k for batch in WRITTEN["out"] for k in batch] == [str(n) for n in range(3, 10)]


def test_committing_destination_writes_batch_and_cursor_atomically(tmp_path: Path, store_url: str) -> None:
    body = SINGLE.format(source_extra="", dest="storelike", dest_extra='fail_on_key = "7"', more="")
    runner = _runner(tmp_path, store_url, body)
    assert runner.run("g").status is RunStatus.failed
    assert runner.system.cursor("g", "a") == 6
    with runner.system.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM items")).scalar_one() == 6
    runner = _runner(tmp_path, store_url, SINGLE.format(source_extra="", dest="storelike", dest_extra="", more=""))
    assert runner.run("g").status is RunStatus.succeeded
    with runner.system.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM items")).scalar_one() == 10
    assert runner.system.cursor("g", "a") == 10


def test_destination_refuses_kinds_it_does_not_accept(tmp_path: Path, store_url: str) -> None:
    body = SINGLE.format(source_extra='kind = "event"', dest="storelike", dest_extra="", more="")
    runner = _runner(tmp_path, store_url, body)
    run = runner.run("g")
    assert run.status is RunStatus.succeeded
    assert run.nodes["out"].rejected == 10
    reasons = {q["reason"] for q in runner.system.quarantine(graph="g", limit=100)}
    assert reasons == {"destination 'out' does not accept records of kind 'event'"}
    assert runner.system.cursor("g", "a") == 10


def test_stop_request_ends_after_a_committed_page(tmp_path: Path, store_url: str) -> None:
    runner = _runner(tmp_path, store_url, SINGLE.format(source_extra="", dest="collect", dest_extra="", more=""))
    pages: list[int] = []
    runner.on_progress = lambda run: pages.append(run.nodes["a"].records_out)
    runner.should_stop = lambda: len(pages) >= 2
    run = runner.run("g")
    assert run.status is RunStatus.interrupted and run.error is None  # consistent, not complete
    assert runner.system.cursor("g", "a") == 6


def test_observer_hooks_and_a_failing_observer(tmp_path: Path, store_url: str) -> None:
    seen: list[tuple[str, Any]] = []

    class Observer:
        @hookimpl
        def cdp_run_started(self, run: Any) -> None:
            seen.append(("started", run.graph))

        @hookimpl
        def cdp_batch_written(self, run: Any, node: str, count: int) -> None:
            seen.append(("batch", (node, count)))

        @hookimpl
        def cdp_record_rejected(self, run: Any, node: str, rejected: Any) -> None:
            seen.append(("rejected", (node, rejected.reason)))

        @hookimpl
        def cdp_run_finished(self, run: Any) -> None:
            seen.append(("finished", run.status))

    class Broken:
        @hookimpl
        def cdp_run_started(self, run: Any) -> None:
            raise RuntimeError("observer bug")

    WRITTEN.clear()
    path = tmp_path / "connectors.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n' + FAN)
    plugins = load_plugins(entry_points=False, extra=[("test", Plugin()), ("observer", Observer()), ("broken", Broken())])
    run = Runner(load_config(path, plugins, env={}), plugins).run("g")
    assert run.status is RunStatus.succeeded
    assert seen[0] == ("started", "g") and seen[-1] == ("finished", RunStatus.succeeded)
    assert ("rejected", ("evens", "5 is a multiple of 5")) in seen
    assert sum(count for kind, (node, count) in [s for s in seen if s[0] == "batch"] if node == "right") == 10


@pytest.fixture(autouse=True)
def _clear() -> Iterator[None]:
    yield
    WRITTEN.clear()


def test_jsonl_destination_writes_records_as_pydantic_would(tmp_path: Path) -> None:
    import json
    from datetime import UTC, datetime, timedelta, timezone

    from cdp_core.base import ConnectorContext
    from cdp_core.builtins.files import FileDestinationConfig, JsonlDestination

    records = [
        Record(stream="a.b", kind="event", key="1", data={"x": 1}, identifiers={"email": "a@b.c"}, occurred_at=when)
        for when in (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 5, tzinfo=timezone(timedelta(hours=2))), None)
    ]
    destination = JsonlDestination(FileDestinationConfig(path="out.jsonl"), ConnectorContext(name="out", base_dir=tmp_path))
    destination.open()
    destination.write(records, Checkpoint("g", "r"))
    destination.close()
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    # a record that is no tombstone is written without the tombstone fields, as before tombstones existed
    expected = [r.model_dump(mode="json", exclude={"deleted", "missing_ok"}) for r in records]
    assert [json.loads(line) for line in lines] == expected


class Finishing(Collect):
    finished: ClassVar[list[str]] = []

    def finish(self) -> None:
        Finishing.finished.append(self.context.name)


def test_finish_only_after_every_source_read_to_its_end(tmp_path: Path, store_url: str) -> None:
    class FinishPlugin:
        @hookimpl
        def cdp_register_destinations(self, register: Register) -> None:
            register("finishing", Finishing)

    def run(source_extra: str, stop_after: int | None = None) -> Any:
        WRITTEN.clear()
        path = tmp_path / "connectors.toml"
        body = SINGLE.format(source_extra=source_extra, dest="finishing", dest_extra="", more="")
        path.write_text(f'[store]\nurl = "{store_url}"\n{body}')
        plugins = load_plugins(entry_points=False, extra=[("test", Plugin()), ("finish", FinishPlugin())])
        runner = Runner(load_config(path, plugins, env={}), plugins)
        runner.system.reset("g")  # each run reads from the start
        if stop_after is not None:
            pages: list[int] = []
            runner.on_progress = lambda r: pages.append(1)
            runner.should_stop = lambda: len(pages) >= stop_after
        return runner.run("g")

    Finishing.finished.clear()
    assert run("").status is RunStatus.succeeded
    assert Finishing.finished == ["out"]
    Finishing.finished.clear()
    assert run("fail_after_pages = 1").status is RunStatus.failed
    assert run("", stop_after=1).status is RunStatus.interrupted  # stopped early: incomplete picture
    assert Finishing.finished == []


class GcProbe(Destination):
    """Notes whether the cyclic collector is on while it writes a batch."""

    config_model = CollectConfig
    seen: ClassVar[list[bool]] = []

    def write(self, batch: list[Record], checkpoint: Checkpoint | None = None) -> None:
        GcProbe.seen.append(gc.isenabled())
        if self.config.fail_on_key in {r.key for r in batch}:  # type: ignore[attr-defined]
            raise OSError("disk full")


def _gc_runner(tmp_path: Path, store_url: str, dest_extra: str = "") -> Runner:
    class GcPlugin:
        @hookimpl
        def cdp_register_destinations(self, register: Register) -> None:
            register("gcprobe", GcProbe)

    path = tmp_path / "connectors.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n'
        + SINGLE.format(source_extra="", dest="gcprobe", dest_extra=dest_extra, more="")
    )
    plugins = load_plugins(entry_points=False, extra=[("test", Plugin()), ("gc", GcPlugin())])
    GcProbe.seen.clear()
    return Runner(load_config(path, plugins, env={}), plugins)


def test_collector_paused_within_a_page_and_running_between_pages(tmp_path: Path, store_url: str) -> None:
    runner = _gc_runner(tmp_path, store_url)
    between: list[bool] = []

    def should_stop() -> bool:
        between.append(gc.isenabled())
        return False

    runner.should_stop = should_stop
    assert gc.isenabled()
    assert runner.run("g").status is RunStatus.succeeded
    assert GcProbe.seen == [False] * 4  # 10 records, pages of 3
    assert between and all(between)
    assert gc.isenabled()


def test_collector_back_on_after_a_failing_page(tmp_path: Path, store_url: str) -> None:
    runner = _gc_runner(tmp_path, store_url, dest_extra='fail_on_key = "4"')
    assert runner.run("g").status is RunStatus.failed
    assert GcProbe.seen == [False, False]
    assert gc.isenabled()


def test_collector_left_off_when_the_program_turned_it_off(tmp_path: Path, store_url: str) -> None:
    runner = _gc_runner(tmp_path, store_url)
    gc.disable()
    try:
        assert runner.run("g").status is RunStatus.succeeded
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert GcProbe.seen == [False] * 4


@pytest.mark.parametrize("first_out", ["owner", "other"])
def test_collector_never_left_off_by_overlapping_pages_in_threads(first_out: str) -> None:
    """Two runs' pages overlap in the scheduler's worker threads: whichever ends first, the collector ends on."""
    import threading

    from cdp_core.runner import paused_gc

    entered = {name: threading.Event() for name in ("owner", "other")}
    leave = {name: threading.Event() for name in ("owner", "other")}
    left = {name: threading.Event() for name in ("owner", "other")}

    def page(name: str) -> None:
        with paused_gc():
            entered[name].set()
            leave[name].wait(5)
        left[name].set()

    assert gc.isenabled()
    owner = threading.Thread(target=page, args=("owner",))
    owner.start()
    assert entered["owner"].wait(5)
    other = threading.Thread(target=page, args=("other",))
    other.start()
    assert entered["other"].wait(5)
    assert not gc.isenabled()
    second_out = "other" if first_out == "owner" else "owner"
    leave[first_out].set()
    assert left[first_out].wait(5)
    assert gc.isenabled() is (first_out == "owner")  # only the page that turned it off turns it on
    leave[second_out].set()
    owner.join(5)
    other.join(5)
    assert gc.isenabled()
