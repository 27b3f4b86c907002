"""Shared pieces of the scheduler tests: a test plugin (slow, failing), configs, run intervals, child processes.

The plugin is importable by child processes too: ``cli_main()`` runs the real
``cdp`` command line with it added to the plugins, so the scheduler under test in
a subprocess is the one users start, only with a source that takes its time.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cdp_core import Page, PluginConfig, Record, RecordKind, Register, Source, Stream, Transform, hookimpl
from cdp_core.config import Config, load_config
from cdp_core.plugins import Plugins, load_plugins
from cdp_core.store import SystemStore, system_tables

TESTS = Path(__file__).resolve().parent


# -- the test plugin ---------------------------------------------------------------------


class TicksConfig(PluginConfig):
    pages: int = 3
    page_size: int = 2
    sleep: float = 0.0


class TicksStream(Stream):
    """A full refresh every run: ``pages`` pages, ``sleep`` seconds before each one."""

    name = "ticks"
    kind = RecordKind.profile

    def __init__(self, config: TicksConfig) -> None:
        self.config = config

    def read(self, cursor: Any) -> Iterator[Page]:
        for page in range(self.config.pages):
            time.sleep(self.config.sleep)
            first = page * self.config.page_size
            records = [
                Record(stream="ticks.ticks", kind=RecordKind.profile, key=str(i), data={"i": i})
                for i in range(first, first + self.config.page_size)
            ]
            yield Page(records, cursor=page + 1)


class TicksSource(Source):
    config_model = TicksConfig

    def streams(self) -> Sequence[Stream]:
        return [TicksStream(self.config)]  # type: ignore[arg-type]


class SleepConfig(PluginConfig):
    seconds: float = 0.05
    marker: str | None = None
    """A file written when a batch starts its sleep: a test waits for it to signal mid-batch."""


class Sleep(Transform):
    """Takes its time over every batch: makes a run slow enough to be interrupted."""

    config_model = SleepConfig

    def process(self, batch: list[Record], ctx: Any) -> list[Record]:
        if self.config.marker:  # type: ignore[attr-defined]
            Path(self.config.marker).write_text("sleeping")  # type: ignore[attr-defined]
        time.sleep(self.config.seconds)  # type: ignore[attr-defined]
        return batch


class ExplodeConfig(PluginConfig):
    counter: str
    failures: int = -1
    """Fail this many batches in all (counted in the ``counter`` file), then pass; -1: always fail."""


class Explode(Transform):
    config_model = ExplodeConfig

    def process(self, batch: list[Record], ctx: Any) -> list[Record]:
        path = Path(self.config.counter)  # type: ignore[attr-defined]
        done = int(path.read_text()) if path.exists() else 0
        if self.config.failures < 0 or done < self.config.failures:  # type: ignore[attr-defined]
            path.write_text(str(done + 1))
            raise RuntimeError(f"boom number {done + 1}")
        return batch


FAILED_HOOKS: list[tuple[str, str]] = []
"""(graph, run id) of every cdp_run_failed call seen in this process."""


class Plugin:
    @hookimpl
    def cdp_register_sources(self, register: Register) -> None:
        register("ticks", TicksSource)

    @hookimpl
    def cdp_register_transforms(self, register: Register) -> None:
        register("sleep", Sleep)
        register("explode", Explode)

    @hookimpl
    def cdp_run_failed(self, run: Any, error: BaseException) -> None:
        FAILED_HOOKS.append((run.graph, run.id))


def plugins() -> Plugins:
    return load_plugins(entry_points=False, extra=[("schedtest", Plugin())])


def cli_main() -> None:
    """``cdp`` with the test plugin: ``python -c 'import test_scheduler_kit as k; k.cli_main()' scheduler run ...``."""
    from cdp_core.cli import common, main

    common.plugins = plugins  # type: ignore[assignment]
    main()


# -- configs -------------------------------------------------------------------------------


def write_config(tmp_path: Path, store_url: str, body: str) -> Path:
    path = tmp_path / "connectors.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n{body}')
    return path


def load(tmp_path: Path, store_url: str, body: str, env: dict[str, str] | None = None) -> tuple[Config, Plugins]:
    loaded = plugins()
    return load_config(write_config(tmp_path, store_url, body), loaded, env=env or {}), loaded


def ticks_graph(name: str, schedule: str, *, pages: int = 3, sleep: float = 0.0, extra: str = "") -> str:
    """A graph ``name``: a ticks source into a JSONL file, with the given schedule lines."""
    return f"""
[connectors.{name}_src]
type = "ticks"
pages = {pages}
sleep = {sleep}
[connectors.{name}_out]
type = "jsonl_file"
path = "{name}.jsonl"

[syncs.{name}]
{schedule}
{extra}
[syncs.{name}.nodes.read]
source = "{name}_src.ticks"
[syncs.{name}.nodes.write]
destination = "{name}_out"
inputs = ["read"]
"""


# -- looking at runs -----------------------------------------------------------------------


@dataclass
class Interval:
    id: str
    status: str
    started_at: datetime
    finished_at: datetime | None


def runs(store_url: str, graph: str) -> list[Interval]:
    system = SystemStore(store_url)
    try:
        with system.engine.connect() as conn:
            rows = conn.execute(select(system_tables.sync_runs).where(system_tables.sync_runs.c.graph == graph)).all()
    finally:
        system.engine.dispose()
    out = [Interval(r.id, r.status, _utc(r.started_at), _utc(r.finished_at) if r.finished_at else None) for r in rows]
    return sorted(out, key=lambda r: r.started_at)


def assert_no_overlap(intervals: list[Interval]) -> None:
    """Every run ended before the next one of the same graph started."""
    for before, after in pairwise(intervals):
        assert before.finished_at is not None, f"run {before.id} never finished but {after.id} started"
        assert before.finished_at <= after.started_at, f"runs overlap: {before} and {after}"


def wait_for(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _utc(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- child processes -----------------------------------------------------------------------


def cli_command(*args: str) -> list[str]:
    """The real ``cdp`` command line with the test plugin, as a child process's argv."""
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_scheduler_kit as k; k.cli_main()"
    return [sys.executable, "-c", code, *args]


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a child's stderr (anything else there fails the test)."""
    lines = []
    for line in text.splitlines():
        if line.strip():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                raise AssertionError(f"not a JSON log line: {line!r}") from None
    return lines


def test_ticks_source_pages_and_sleeps() -> None:
    stream = TicksStream(TicksConfig(pages=2, page_size=3, sleep=0.01))
    pages = list(stream.read(None))
    assert [len(p.records) for p in pages] == [3, 3] and [p.cursor for p in pages] == [1, 2]


def test_explode_fails_as_often_as_told(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    explode = Explode(ExplodeConfig(counter=str(counter), failures=1))
    try:
        explode.process([], None)
        raise AssertionError("the first batch should fail")
    except RuntimeError as exc:
        assert "boom number 1" in str(exc)
    assert explode.process([], None) == []
