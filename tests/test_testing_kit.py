"""The test kit itself: fixtures, the in-memory plugins, the helpers, and a conformance suite that fails
when a plugin breaks its contract (run with pytester on deliberately broken plugins)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

pytest.register_assert_rewrite("cdp_core.testing")

from cdp_core import RecordKind
from cdp_core.config import ConfigError
from cdp_core.plugins import Plugins, load_plugins
from cdp_core.runinfo import RunStatus
from cdp_core.store import SystemStore
from cdp_core.testing import (
    CollectingDestination,
    Collector,
    ListSource,
    UpsertCollectingDestination,
    kit_plugin,
    load_test_plugins,
    make_context,
    make_records,
    read_keys,
    run_graph,
    to_toml,
)

pytest_plugins = ["cdp_core.testing", "pytester"]


# -- fixtures -----------------------------------------------------------------------------------


def test_cdp_plugins_holds_the_builtins_only(cdp_plugins: Plugins) -> None:
    assert {"csv", "jsonl"} <= set(cdp_plugins.registry.names("source"))
    assert {"csv_file", "jsonl_file"} <= set(cdp_plugins.registry.names("destination"))
    assert all(name.startswith("cdp.") for name in cdp_plugins.info), "entry points must be off"
    assert cdp_plugins.registry.get("source", "list_source") is None


def test_cdp_plugins_ignores_cdp_disable_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_DISABLE_PLUGINS", "cdp.files")
    assert load_test_plugins().info["cdp.files"].status == "ok"


def test_register_plugin_returns_a_new_manager(register_plugin: Any, cdp_plugins: Plugins) -> None:
    plugins = register_plugin(kit_plugin)
    assert plugins is not cdp_plugins
    reg = plugins.registry.get("source", "list_source")
    assert reg is not None and reg.cls is ListSource and reg.plugin == "cdp.testing"
    assert plugins.registry.get("destination", "collect_upsert").cls is UpsertCollectingDestination
    assert cdp_plugins.registry.get("source", "list_source") is None
    assert load_plugins(entry_points=False, disabled=set()).registry.get("source", "list_source") is None


def test_register_plugin_names_and_extras(register_plugin: Any) -> None:
    class Quiet:
        pass

    plugins = register_plugin(kit_plugin, "my-kit", extra=[Quiet(), Quiet(), ("named", Quiet())])
    assert plugins.info["my-kit"].registered["sources"] == ["list_source"]
    quiet = f"{__name__}.test_register_plugin_names_and_extras.<locals>.Quiet"
    assert {quiet, f"{quiet}#2", "named"} <= set(plugins.info), "two instances of a class get two names"


def test_register_plugin_with_a_builtin_module_does_not_break_it(register_plugin: Any) -> None:
    from cdp_core.builtins import files

    plugins = register_plugin(files)
    assert plugins.info["cdp.files"].status == "ok"
    assert not plugins.broken
    assert plugins.registry.get("source", "csv") is not None


def test_cdp_store(cdp_store: SystemStore, cdp_store_url: str, tmp_path: Path) -> None:
    assert cdp_store_url == f"sqlite:///{tmp_path}/store.sqlite"
    assert (tmp_path / "store.sqlite").exists()
    assert cdp_store.cursor("g", "n") is None
    assert cdp_store.runs() == []


def test_cdp_respx_fails_unmocked_requests(cdp_respx: respx.Router) -> None:
    cdp_respx.get("https://api.example.com/ok").respond(json={"ok": True})
    assert httpx.get("https://api.example.com/ok").json() == {"ok": True}
    with pytest.raises(respx.models.AllMockedAssertionError):
        httpx.get("https://api.example.com/not-mocked")


def test_make_context(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, "shop", services={"x": 1})
    assert ctx.name == "shop" and ctx.base_dir == tmp_path and ctx.services == {"x": 1}
    assert ctx.store_url == f"sqlite:///{tmp_path}/store.sqlite"
    assert ctx.resolve("a/b.csv") == tmp_path / "a" / "b.csv"
    assert ctx.logger.name == "cdp.connector.shop"


# -- ListSource ---------------------------------------------------------------------------------

ROWS = [{"id": str(n), "email": f"p{n}@example.com"} for n in range(1, 6)]


def test_list_source_pages_and_cursors() -> None:
    stream = ListSource.of(ROWS, page_size=2, identifiers={"email": "email"}, kind=RecordKind.event).stream("items")
    pages = list(stream.read(None))
    assert [[r.key for r in p.records] for p in pages] == [["1", "2"], ["3", "4"], ["5"]]
    assert [p.cursor for p in pages] == [2, 4, 5]
    first = pages[0].records[0]
    assert first.stream == "list.items" and first.kind is RecordKind.event
    assert first.identifiers == {"email": "p1@example.com"} and first.data == ROWS[0]
    assert read_keys(stream, 2) == (["3", "4", "5"], 5)
    assert [(p.records, p.cursor) for p in stream.read(5)] == [([], 5)]


def test_list_source_full_refresh_ends_with_cursor_none() -> None:
    stream = ListSource.of(ROWS, page_size=2, incremental=False).stream("items")
    assert stream.cursor_field is None
    assert [p.cursor for p in stream.read(None)] == [2, 4, None]
    assert read_keys(stream, 4) == (["5"], None)


def test_list_source_rejects_rows_without_key_and_bad_cursors() -> None:
    stream = ListSource.of([{"id": "1"}, {"name": "x"}, {"id": ""}], page_size=10).stream("items")
    [page] = list(stream.read(None))
    assert [r.key for r in page.records] == ["1"]
    assert [r.reason for r in page.rejects] == ["record 1: missing key field 'id'", "record 2: missing key field 'id'"]
    for bad in ("2", -1, True, {"offset": 1}):
        with pytest.raises(ValueError, match="cursor must be None or a record index"):
            list(stream.read(bad))


def test_list_source_records_are_copies() -> None:
    rows = [{"id": "1", "tags": ["a"]}]
    source = ListSource.of(rows)
    [page] = list(source.stream("items").read(None))
    page.records[0].data["id"] = "changed"
    assert rows[0]["id"] == "1"
    assert [r.data["id"] for p in source.stream("items").read(None) for r in p.records] == ["1"]


def test_list_source_fails_after_pages() -> None:
    source = ListSource.of(ROWS, page_size=2)
    source.config.fail_after_pages = 1  # type: ignore[attr-defined]
    pages = source.stream("items").read(None)
    assert next(pages).cursor == 2
    with pytest.raises(RuntimeError, match="failing after 1 page"):
        next(pages)


# -- CollectingDestination ----------------------------------------------------------------------


def test_collecting_destination_append_and_upsert() -> None:
    records = make_records(3)
    append, upsert = CollectingDestination(), UpsertCollectingDestination()
    for destination in (append, upsert):
        destination.open()
        destination.write(records[:2])
        destination.write([r.model_copy(update={"data": {"v": 2}}) for r in records])
        destination.close()
        assert destination.opened and destination.closed and len(destination.batches) == 2
    assert append.keys == ["1", "2", "1", "2", "3"]
    assert upsert.keys == ["1", "2", "3"]
    assert [r.data for r in upsert.records] == [{"v": 2}] * 3


def test_collecting_destination_keeps_copies_and_can_fail() -> None:
    destination = CollectingDestination(CollectingDestination.config_model(fail_after_batches=1))
    batch = make_records(1)
    destination.write(batch)
    batch[0].data["id"] = "changed"
    assert destination.records[0].data["id"] == "1"
    with pytest.raises(RuntimeError, match="failing after 1 batch"):
        destination.write(batch)


# -- helpers ------------------------------------------------------------------------------------


def test_to_toml_round_trips() -> None:
    value = {"id": "1", "n": 2, "x": 1.5, "ok": True, "tags": ["a", "b"], "nested": {"a b": 'c"d'}, "gone": None}
    parsed = tomllib.loads(f"v = {to_toml(value)}")["v"]
    assert parsed == {k: v for k, v in value.items() if v is not None}
    with pytest.raises(TypeError):
        to_toml(object())


def _graph(rows: list[dict[str, Any]], fail_after_pages: int | None = None) -> str:
    fail = "" if fail_after_pages is None else f"fail_after_pages = {fail_after_pages}\n"
    return f"""
[connectors.src]
type = "list_source"
page_size = 2
{fail}streams = {to_toml({"items": {"records": rows}})}

[connectors.sink]
type = "collect"

[syncs.main.nodes.items]
source = "src.items"

[syncs.main.nodes.out]
destination = "sink"
inputs = ["items"]
"""


def test_run_graph_runs_with_the_kit_store(
    register_plugin: Any, tmp_path: Path, cdp_store: SystemStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path / "..")
    collector = Collector()
    plugins = register_plugin(kit_plugin)
    run = run_graph(tmp_path, _graph(ROWS), plugins, collector=collector)
    assert run.status is RunStatus.succeeded, run.error
    assert collector.keys("sink") == ["1", "2", "3", "4", "5"]
    assert run.nodes["out"].records_out == 5
    assert cdp_store.cursor("main", "items") == 5
    assert [r.id for r in cdp_store.runs("main")] == [run.id]
    assert not (tmp_path / ".." / "cdp.sqlite").exists(), "the store must live in tmp_path"
    again = run_graph(tmp_path, _graph(ROWS), plugins, collector=collector)
    assert again.nodes["out"].records_out == 0, "an incremental source reads nothing new"


def test_run_graph_failure_then_resume(register_plugin: Any, tmp_path: Path, cdp_store: SystemStore) -> None:
    collector = Collector()
    plugins = register_plugin(kit_plugin)
    failed = run_graph(tmp_path, _graph(ROWS, fail_after_pages=2), plugins, collector=collector)
    assert failed.status is RunStatus.failed
    assert collector.keys("sink") == ["1", "2", "3", "4"]
    assert cdp_store.cursor("main", "items") == 4
    resumed = run_graph(tmp_path, _graph(ROWS), plugins, collector=collector)
    assert resumed.status is RunStatus.succeeded
    assert collector.keys("sink") == ["1", "2", "3", "4", "5"], "nothing lost, nothing twice"


def test_run_graph_reports_config_errors(cdp_plugins: Plugins, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown plugin type 'list_source'"):
        run_graph(tmp_path, _graph(ROWS), cdp_plugins)


# -- the conformance suite fails broken plugins --------------------------------------------------

SOURCES = """
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
from pydantic import ConfigDict

from cdp_core import Page, PluginConfig, Record, Register, Source, Stream, hookimpl
from cdp_core.testing import SourceConformance

pytest_plugins = ["cdp_core.testing"]


class CountConfig(PluginConfig):
    count: int = 6
    page_size: int = 2


class Numbers(Stream):
    name = "n"
    cursor_field = "n"

    def __init__(self, source: "Good") -> None:
        self.source = source

    def read(self, cursor: Any) -> Iterator[Page]:
        config = self.source.config
        for first in range(self.source.start(cursor), config.count, config.page_size):
            last = min(first + config.page_size, config.count)
            records = [Record(stream=f"{self.source.context.name}.n", key=str(i)) for i in range(first, last)]
            yield Page(records, cursor=last)


class Good(Source):
    config_model = CountConfig

    def streams(self):
        return [Numbers(self)]

    def start(self, cursor: Any) -> int:
        return cursor or 0


class Forgetful(Good):
    def start(self, cursor: Any) -> int:
        return 0


class OffByOne(Good):
    def start(self, cursor: Any) -> int:
        return cursor + 1 if cursor else 0


class AllNumbers(Numbers):
    cursor_field = None

    def read(self, cursor: Any) -> Iterator[Page]:
        pages = list(super().read(cursor)) or [Page([], None)]
        yield from pages[:-1]
        yield Page(pages[-1].records, None)


class FullRefresh(Good):
    def streams(self):
        return [AllNumbers(self)]


class EndsWithNone(Numbers):
    def read(self, cursor: Any) -> Iterator[Page]:
        pages = list(super().read(cursor)) or [Page([], None)]
        yield from pages[:-1]
        yield Page(pages[-1].records, None)


class Unmarked(Good):
    # Incremental (cursor_field "n") but ends its read with cursor None.

    def streams(self):
        return [EndsWithNone(self)]


class LooseConfig(CountConfig):
    model_config = ConfigDict(extra="allow")


class Loose(Good):
    config_model = LooseConfig


class Peeking(Good):
    def streams(self):
        open(self.context.resolve("probe.txt"), "a").close()
        return super().streams()


class ChattyNumbers(Numbers):
    def read(self, cursor: Any) -> Iterator[Page]:
        httpx.get("https://api.example.com/unmocked")
        yield from super().read(cursor)


class Chatty(Good):
    def streams(self):
        return [ChattyNumbers(self)]


class EmptyKeys(Good):
    def streams(self):
        class Blank(Numbers):
            def read(self, cursor):
                for page in super().read(cursor):
                    yield Page([r.model_copy(update={"key": " "}) for r in page.records], page.cursor)
        return [Blank(self)]


class Plugin:
    def __init__(self, type_name, cls):
        self.type_name, self.cls = type_name, cls

    @hookimpl
    def cdp_register_sources(self, register: Register) -> None:
        register(self.type_name, self.cls)


# A contact list sorted by updated_at, read incrementally from a mark; changed by the tests.
CONTACTS: list[dict[str, Any]] = []


class Contacts(Stream):
    name = "c"
    cursor_field = "updated"

    def __init__(self, source: "ByOffset") -> None:
        self.source = source

    def read(self, cursor: Any) -> Iterator[Page]:
        state = cursor or {"mark": -1, "offset": 0}
        mark, offset, size = state["mark"], state.get("offset", 0), self.source.config.page_size
        while True:
            rows = sorted((r for r in CONTACTS if r["updated"] > mark), key=lambda r: r["updated"])
            page = rows[offset : offset + size]
            records = [Record(stream=f"{self.source.context.name}.c", key=r["id"]) for r in page]
            if offset + size >= len(rows):
                newest = max([mark, *(r["updated"] for r in rows)])
                yield Page(records, {"mark": newest})
                return
            offset += size
            yield Page(records, {"mark": mark, "offset": offset})


class ByOffset(Good):
    def streams(self):
        return [Contacts(self)]


class Base(SourceConformance):
    config: ClassVar[dict[str, Any]] = {}
    stream = "n"
    empty_config: ClassVar[dict[str, Any] | None] = {"count": 0}
    pages_never_change = "numbers: a record never changes"

    def add_more(self, source_env, tmp_path):
        self.config = {"count": 9}  # three more numbers: 6, 7, 8
        return ["6", "7", "8"]


class TestGood(Base):
    plugin = Plugin("good", Good)
    type_name = "good"


class TestForgetful(Base):
    plugin = Plugin("forgetful", Forgetful)
    type_name = "forgetful"


class TestOffByOne(Base):
    plugin = Plugin("offbyone", OffByOne)
    type_name = "offbyone"


class TestLoose(Base):
    plugin = Plugin("loose", Loose)
    type_name = "loose"


class TestPeeking(Base):
    plugin = Plugin("peeking", Peeking)
    type_name = "peeking"


class TestNoChangeHook(Base):
    # Incremental, with neither change_between_pages nor a reason its pages cannot change.

    plugin = Plugin("nohook", Good)
    type_name = "nohook"
    pages_never_change = None


class TestBlankReason(Base):
    plugin = Plugin("blank", Good)
    type_name = "blank"
    pages_never_change = " "


class TestByOffset(Base):
    # Offsets over data sorted by updated: the update moves contact 1 to the end and 3 slips by.

    plugin = Plugin("byoffset", ByOffset)
    type_name = "byoffset"
    stream = "c"
    pages_never_change = None

    def setup_source(self, respx_mock, tmp_path):
        CONTACTS[:] = [{"id": str(n), "updated": n} for n in range(1, 7)]

    def setup_empty(self, respx_mock, tmp_path):
        CONTACTS[:] = []

    def add_more(self, source_env, tmp_path):
        CONTACTS.append({"id": "7", "updated": 7})
        return ["7"]

    def change_between_pages(self, respx_mock, tmp_path):
        CONTACTS[0]["updated"] = 10
        return "1"


class TestFullRefreshWithoutHook(Base):
    # A full-refresh stream passes by what makes it safe: the next run reads everything again.

    plugin = Plugin("fullrefresh", FullRefresh)
    type_name = "fullrefresh"
    pages_never_change = None


class TestUnmarked(Base):
    # Ends with cursor None, as a full refresh does, but has a cursor field: the next run reads all again.

    plugin = Plugin("unmarked", Unmarked)
    type_name = "unmarked"
    pages_never_change = None


class TestChatty(Base):
    plugin = Plugin("chatty", Chatty)
    type_name = "chatty"


class TestEmptyKeys(Base):
    plugin = Plugin("emptykeys", EmptyKeys)
    type_name = "emptykeys"


class TestWrongTypeName(Base):
    plugin = Plugin("good", Good)
    type_name = "goood"
"""

TRANSFORMS = """
import random

from cdp_core import Record, Register, Transform, hookimpl
from cdp_core.testing import TransformConformance, make_records

pytest_plugins = ["cdp_core.testing"]


class Lower(Transform):
    def process(self, batch, ctx):
        out = []
        for record in batch:
            if record.key == "2":
                ctx.reject(record, "no consent")
                continue
            record.data["email"] = record.data["email"].strip().lower()
            out.append(record)
        return out


class Dicts(Transform):
    def process(self, batch, ctx):
        return [r.data for r in batch]


class Mute(Transform):
    def process(self, batch, ctx):
        for record in batch:
            ctx.reject(record, "")
        return []


class Dice(Transform):
    def process(self, batch, ctx):
        for record in batch:
            record.data["roll"] = random.random()
        return batch


class Echo(Transform):
    def process(self, batch, ctx):
        return batch or [Record(stream="x", key="invented")]


class Plugin:
    def __init__(self, type_name, cls):
        self.type_name, self.cls = type_name, cls

    @hookimpl
    def cdp_register_transforms(self, register: Register) -> None:
        register(self.type_name, self.cls)


class TestLower(TransformConformance):
    plugin = Plugin("lower", Lower)
    type_name = "lower"


class TestDicts(TransformConformance):
    plugin = Plugin("dicts", Dicts)
    type_name = "dicts"


class TestMute(TransformConformance):
    plugin = Plugin("mute", Mute)
    type_name = "mute"


class TestDice(TransformConformance):
    plugin = Plugin("dice", Dice)
    type_name = "dice"


class TestEcho(TransformConformance):
    plugin = Plugin("echo", Echo)
    type_name = "echo"
"""

DESTINATIONS = """
from cdp_core import Destination, Register, WriteMode, hookimpl
from cdp_core.store import SystemStore
from cdp_core.testing import DestinationConformance

pytest_plugins = ["cdp_core.testing"]


class Memory(Destination):
    def __init__(self, *args):
        super().__init__(*args)
        self.held = []

    def write(self, batch, checkpoint=None):
        self.held.extend(r.key for r in batch)


class LyingUpsert(Memory):
    write_mode = WriteMode.upsert


class ChokesOnEmpty(Memory):
    def write(self, batch, checkpoint=None):
        if not batch:
            raise ValueError("empty batch")
        super().write(batch, checkpoint)


class Committer(Memory):
    commits_checkpoint = True

    def write(self, batch, checkpoint=None):
        super().write(batch, checkpoint)
        engine = SystemStore(self.context.store_url).engine
        with engine.begin() as conn:
            checkpoint.write(conn)
        engine.dispose()


class Forgets(Memory):
    commits_checkpoint = True


class Plugin:
    def __init__(self, type_name, cls):
        self.type_name, self.cls = type_name, cls

    @hookimpl
    def cdp_register_destinations(self, register: Register) -> None:
        register(self.type_name, self.cls)


class Base(DestinationConformance):
    def read_back(self, destination, tmp_path):
        return destination.held


class TestMemory(Base):
    plugin = Plugin("memory", Memory)
    type_name = "memory"


class TestLyingUpsert(Base):
    plugin = Plugin("lying", LyingUpsert)
    type_name = "lying"


class TestChokesOnEmpty(Base):
    plugin = Plugin("choke", ChokesOnEmpty)
    type_name = "choke"


class TestCommitter(Base):
    plugin = Plugin("committer", Committer)
    type_name = "committer"


class TestForgets(Base):
    plugin = Plugin("forgets", Forgets)
    type_name = "forgets"
"""


def _outcomes(pytester: pytest.Pytester, code: str) -> dict[str, tuple[str, str]]:
    """Run ``code`` as a test module; map ``Class::test`` to (outcome, failure text)."""
    pytester.makepyfile(test_suite=code)
    recorder = pytester.inline_run("-p", "no:cacheprovider")
    results: dict[str, tuple[str, str]] = {}
    passed, skipped, failed = recorder.listoutcomes()
    for outcome, reports in (("passed", passed), ("skipped", skipped), ("failed", failed)):
        for report in reports:
            name = report.nodeid.split("::", 1)[1]
            if outcome == "failed" or name not in results:
                results[name] = (outcome, report.longreprtext if outcome != "passed" else "")
    assert results, "no test ran"
    return results


def _failing(results: dict[str, tuple[str, str]], cls: str) -> set[str]:
    return {
        name.split("::")[1]
        for name, (outcome, _) in results.items()
        if name.startswith(cls + "::") and outcome == "failed"
    }


def test_source_suite_passes_a_good_source_and_fails_broken_ones(pytester: pytest.Pytester) -> None:
    results = _outcomes(pytester, SOURCES)
    assert _failing(results, "TestGood") == set()
    assert not [n for n, (o, _) in results.items() if o == "skipped"]  # the suite never skips: it asserts
    assert _failing(results, "TestForgetful") == {
        "test_resume_after_every_page",
        "test_reread_from_final_cursor",
        "test_new_records_after_final_cursor",
    }
    assert "repeated or unexpected ['0', '1']" in results["TestForgetful::test_resume_after_every_page"][1]
    assert _failing(results, "TestOffByOne") == {"test_resume_after_every_page", "test_new_records_after_final_cursor"}
    assert "lost ['2']" in results["TestOffByOne::test_resume_after_every_page"][1]
    loose = _failing(results, "TestLoose")
    assert {"test_registered", "test_config_model", "test_full_read"} <= loose
    assert "extra='forbid'" in results["TestLoose::test_registered"][1]
    assert _failing(results, "TestPeeking") == {"test_streams_do_no_io"}
    assert "I/O is not allowed here: open(" in results["TestPeeking::test_streams_do_no_io"][1]
    assert "probe.txt" in results["TestPeeking::test_streams_do_no_io"][1]
    assert "test_full_read" in _failing(results, "TestChatty")
    assert "AllMockedAssertionError" in results["TestChatty::test_full_read"][1]
    assert _failing(results, "TestEmptyKeys") == {"test_full_read", "test_keys_unique", "test_new_records_after_final_cursor"}
    # the changing-data case: an incremental harness says how the data changes, or why it cannot
    assert _failing(results, "TestNoChangeHook") == {"test_data_changes_between_pages"}
    assert "implement change_between_pages(" in results["TestNoChangeHook::test_data_changes_between_pages"][1]
    assert "pages_never_change" in results["TestNoChangeHook::test_data_changes_between_pages"][1]
    assert _failing(results, "TestBlankReason") == {"test_data_changes_between_pages"}
    assert "pages_never_change is blank" in results["TestBlankReason::test_data_changes_between_pages"][1]
    assert _failing(results, "TestByOffset") == {"test_data_changes_between_pages"}
    assert "records lost while the data changed between pages: ['3']" in (
        results["TestByOffset::test_data_changes_between_pages"][1]
    )
    assert _failing(results, "TestFullRefreshWithoutHook") == set()
    assert "test_data_changes_between_pages" in _failing(results, "TestUnmarked")
    assert "has cursor_field 'n'" in results["TestUnmarked::test_data_changes_between_pages"][1]
    wrong = _failing(results, "TestWrongTypeName")
    assert "test_registered" in wrong
    assert "no source type 'goood' is registered" in results["TestWrongTypeName::test_registered"][1]


def test_pages_never_change_passes_with_its_reason_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SOURCES)
    only = "(TestGood or TestFullRefreshWithoutHook) and between"
    recorder = pytester.inline_run("-p", "no:cacheprovider", "-k", only)
    recorder.assertoutcome(passed=2)
    reports = [r for r in recorder.getreports("pytest_runtest_logreport") if r.when == "call"]
    reasons = {r.nodeid.split("::")[1]: dict(r.user_properties).get("pages_never_change") for r in reports}
    assert reasons == {
        "TestGood": "numbers: a record never changes",
        "TestFullRefreshWithoutHook": "full refresh: the next run reads every record again",
    }


def test_transform_suite_fails_broken_transforms(pytester: pytest.Pytester) -> None:
    results = _outcomes(pytester, TRANSFORMS)
    assert _failing(results, "TestLower") == set()
    assert _failing(results, "TestDicts") == {"test_returns_records"}
    assert _failing(results, "TestMute") == {"test_rejects_carry_a_reason"}
    assert _failing(results, "TestDice") == {"test_deterministic"}
    assert _failing(results, "TestEcho") == {"test_empty_batch"}


def test_destination_suite_fails_broken_destinations(pytester: pytest.Pytester) -> None:
    results = _outcomes(pytester, DESTINATIONS)
    assert _failing(results, "TestMemory") == set()
    assert results["TestMemory::test_commits_checkpoint"][0] == "passed"
    assert _failing(results, "TestCommitter") == set()
    assert results["TestCommitter::test_commits_checkpoint"][0] == "passed"
    assert _failing(results, "TestLyingUpsert") == {"test_write_mode_semantics"}
    assert _failing(results, "TestChokesOnEmpty") == {"test_empty_batch_is_harmless"}
    forgets = _failing(results, "TestForgets")
    assert {"test_commits_checkpoint", "test_open_write_close"} <= forgets
    assert "did not commit" in results["TestForgets::test_commits_checkpoint"][1]


# -- the deletion check (SourceConformance.test_declared_deletions) ----------------------------

DELETIONS = """
from collections.abc import Iterator
from typing import Any, ClassVar

from cdp_core import Page, PluginConfig, Record, RecordKind, Register, Source, Stream, hookimpl
from cdp_core.testing import SourceConformance

pytest_plugins = ["cdp_core.testing"]


class LogConfig(PluginConfig):
    log: list[str] = ["1", "2", "3", "-9", "4"]
    \"\"\"A change log: "K" writes record K, "-K" deletes it (9: written before the log starts).\"\"\"


class Changes(Stream):
    name = "n"
    cursor_field = "position"
    emits_deletions = True

    def __init__(self, source: Source) -> None:
        self.source = source

    def tombstone(self, key: str) -> Record:
        return Record(stream=f"{self.source.context.name}.n", key=key, deleted=True)

    def read(self, cursor: Any) -> Iterator[Page]:
        log = self.source.config.log
        for first in range(cursor or 0, len(log), 2):
            entries = log[first : first + 2]
            records = [
                self.tombstone(e[1:]) if e.startswith("-") else Record(stream=f"{self.source.context.name}.n", key=e)
                for e in entries
            ]
            yield Page(records, cursor=first + len(entries))


class Undeclared(Changes):
    emits_deletions = False


class Stuffed(Changes):
    def tombstone(self, key: str) -> Record:
        return Record(stream=f"{self.source.context.name}.n", key=key, deleted=True, data={"email": "x@y.de"})


class WrongKind(Changes):
    def tombstone(self, key: str) -> Record:
        return Record(stream=f"{self.source.context.name}.n", kind=RecordKind.order, key=key, deleted=True)


class Gone(Changes):
    \"\"\"A stream of deletions only, of stream n's records.\"\"\"

    name = "gone"
    records_of = "n"

    def read(self, cursor: Any) -> Iterator[Page]:
        for page in super().read(cursor):
            yield Page([r for r in page.records if r.deleted], page.cursor)


class Nowhere(Gone):
    records_of = "missing"


def source_of(*stream_classes: type) -> type:
    class Log(Source):
        config_model = LogConfig

        def streams(self):
            return [cls(self) for cls in stream_classes]

    return Log


class Plugin:
    def __init__(self, type_name, cls):
        self.type_name, self.cls = type_name, cls

    @hookimpl
    def cdp_register_sources(self, register: Register) -> None:
        register(self.type_name, self.cls)


class Base(SourceConformance):
    config: ClassVar[dict[str, Any]] = {}
    stream = "n"
    empty_config: ClassVar[dict[str, Any] | None] = {"log": []}
    min_pages = 1
    pages_never_change = "a log given whole in the config: nothing changes while it is read"

    def add_more(self, source_env, tmp_path):
        self.config = {"log": [*LogConfig().log, "5"]}
        return ["5"]

    def delete_records(self, source_env, tmp_path):
        self.config = {"log": [*LogConfig().log, "-1", "-4"]}
        return ["1", "4"]


class TestDeclared(Base):
    plugin = Plugin("declared", source_of(Changes))
    type_name = "declared"


class TestUndeclared(Base):
    plugin = Plugin("undeclared", source_of(Undeclared))
    type_name = "undeclared"


class TestNoHook(Base):
    plugin = Plugin("nohook", source_of(Changes))
    type_name = "nohook"
    delete_records = SourceConformance.delete_records


class TestStuffed(Base):
    plugin = Plugin("stuffed", source_of(Stuffed))
    type_name = "stuffed"


class TestWrongKind(Base):
    plugin = Plugin("wrongkind", source_of(WrongKind))
    type_name = "wrongkind"


class TestDeletionsOnly(Base):
    plugin = Plugin("gone", source_of(Changes, Gone))
    type_name = "gone"
    stream = "gone"

    def add_more(self, source_env, tmp_path):
        self.config = {"log": [*LogConfig().log, "-3"]}
        return ["3"]


class TestDeletionsOfNowhere(TestDeletionsOnly):
    plugin = Plugin("nowhere", source_of(Changes, Nowhere))
    type_name = "nowhere"
"""


def test_source_suite_checks_declared_deletions(pytester: pytest.Pytester) -> None:
    results = _outcomes(pytester, DELETIONS)
    assert results["TestDeclared::test_declared_deletions"] == ("passed", "")
    assert _failing(results, "TestDeclared") == set()
    assert _failing(results, "TestDeletionsOnly") == set()
    failure = {name: text for name, (outcome, text) in results.items() if outcome == "failed"}
    assert _failing(results, "TestUndeclared") == {"test_declared_deletions"}
    undeclared = failure["TestUndeclared::test_declared_deletions"]
    assert "does not declare emits_deletions, yet its read yielded tombstones of ['9']" in undeclared
    assert _failing(results, "TestNoHook") == {"test_declared_deletions"}
    assert "implement delete_records(source_env, tmp_path)" in failure["TestNoHook::test_declared_deletions"]
    assert _failing(results, "TestStuffed") == {"test_declared_deletions"}
    assert "tombstone '9' of stream 'n': data ['email']" in failure["TestStuffed::test_declared_deletions"]
    assert _failing(results, "TestWrongKind") == {"test_declared_deletions", "test_full_read"}
    wrong_kind = failure["TestWrongKind::test_declared_deletions"]
    assert "kind order, but the records of stream 'n' it deletes are profile" in wrong_kind
    assert _failing(results, "TestDeletionsOfNowhere") == {"test_declared_deletions", "test_full_read"}
    nowhere = failure["TestDeletionsOfNowhere::test_declared_deletions"]
    assert "records_of = 'missing' is no stream of the source" in nowhere
    assert not [n for n, (o, _) in results.items() if o == "skipped" and "deletions" in n]
