"""The test kit itself: its fixtures, the in-memory plugins and the helpers (each conformance suite of the kit
is tested in its own module, test_*_conformance_kit.py)."""

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

pytest_plugins = ["cdp_core.testing"]


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
