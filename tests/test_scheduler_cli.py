"""`cdp scheduler status`, `cdp runs --graph`, and `cdp sync` honouring the graph lease."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import test_scheduler_kit as kit
from test_scheduler_kit import ticks_graph, write_config
from test_scheduler_triggers import expected_fires
from typer.testing import CliRunner

from cdp_core.cli import app, common
from cdp_core.store import SystemStore
from cdp_core.store.leases import Leases

CRONS = {
    "nightly": ("0 2 * * *", "Europe/Berlin"),
    "quarterly": ("*/15 * * * *", "UTC"),
    "weekdays": ("30 9 * * 1-5", "America/New_York"),
    "sundays": ("0 18 * * 0", "Asia/Tokyo"),
}


@pytest.fixture(autouse=True)
def _test_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "plugins", kit.plugins)


def cdp(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def config_with_crons(tmp_path: Path) -> Path:
    body = "".join(
        ticks_graph(name, f'schedule = "{expr}"\ntimezone = "{zone}"') for name, (expr, zone) in CRONS.items()
    )
    body += ticks_graph("often", 'every = "10m"') + ticks_graph("after", 'depends_on = ["nightly", "often"]')
    return write_config(tmp_path, f"sqlite:///{tmp_path}/store.sqlite", body)


def test_status_json_next_runs_match_the_cron_expressions(tmp_path: Path) -> None:
    config = config_with_crons(tmp_path)
    at = datetime(2025, 1, 10, 11, 7, 30, tzinfo=UTC)  # a Friday
    result = cdp("scheduler", "status", "-c", str(config), "--json", "--at", at.isoformat())
    assert result.exit_code == 0, result.output
    entries = {e["graph"]: e for e in json.loads(result.stdout)}  # nothing but JSON on stdout
    for name, (expression, zone) in CRONS.items():
        [expected] = expected_fires(expression, zone, at, 1)
        assert datetime.fromisoformat(entries[name]["next_run"]) == expected, name
        assert entries[name]["next_run"] == expected.isoformat(), "given in the graph's time zone"
        assert entries[name]["schedule"] == expression and entries[name]["timezone"] == zone
    assert entries["weekdays"]["next_run"] == "2025-01-10T09:30:00-05:00"  # Friday 9:30 in New York is still ahead
    assert entries["sundays"]["next_run"] == "2025-01-12T18:00:00+09:00"
    assert entries["often"]["next_run"] == "2025-01-10T11:10:00+00:00"
    assert entries["after"]["next_run"] is None and entries["after"]["trigger"] == "after nightly, often"
    assert [e["graph"] for e in json.loads(result.stdout)].index("after") > 3, "dependencies first"
    assert all(e["last_run"] is None and e["running"] is None for e in entries.values())


def test_status_json_at_the_real_now(tmp_path: Path) -> None:
    config = config_with_crons(tmp_path)
    before = datetime.now(UTC)
    result = cdp("scheduler", "status", "-c", str(config), "--json")
    after = datetime.now(UTC)
    assert result.exit_code == 0, result.output
    entries = {e["graph"]: e for e in json.loads(result.stdout)}
    for name, (expression, zone) in CRONS.items():
        candidates = {expected_fires(expression, zone, before, 1)[0], expected_fires(expression, zone, after, 1)[0]}
        assert datetime.fromisoformat(entries[name]["next_run"]) in candidates, name


def test_status_shows_the_last_run_and_a_running_lease(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    config = write_config(tmp_path, store_url, ticks_graph("g", 'every = "1h"', pages=4) + ticks_graph("h", ""))
    assert cdp("sync", "g", "-c", str(config)).exit_code == 0
    Leases(SystemStore(store_url).create().engine, holder="host:42:abcd").try_acquire("h")
    result = cdp("scheduler", "status", "-c", str(config), "--json")
    entries = {e["graph"]: e for e in json.loads(result.stdout)}
    last = entries["g"]["last_run"]
    assert last["status"] == "succeeded" and last["read"] == 8 and last["written"] == 8 and last["rejected"] == 0
    assert last["duration_seconds"] >= 0 and last["finished_at"] >= last["started_at"]
    assert entries["h"]["running"]["holder"] == "host:42:abcd" and entries["h"]["trigger"] == "manual"
    text = cdp("scheduler", "status", "-c", str(config))
    assert text.exit_code == 0
    assert "every 1h (UTC)" in text.stdout and "succeeded" in text.stdout and "running (host:42:abcd)" in text.stdout


def test_status_rejects_a_bad_time(tmp_path: Path) -> None:
    result = cdp("scheduler", "status", "-c", str(config_with_crons(tmp_path)), "--at", "tomorrow")
    assert result.exit_code == 2 and "--at" in result.stderr


def test_sync_of_a_busy_graph_says_so_and_exits_1(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    config = write_config(tmp_path, store_url, ticks_graph("g", "") + ticks_graph("other", ""))
    system = SystemStore(store_url).create()
    Leases(system.engine, holder="scheduler-host:7:beef").try_acquire("g")
    result = cdp("sync", "g", "-c", str(config))
    assert result.exit_code == 1
    assert "busy" in result.stderr and "scheduler-host:7:beef" in result.stderr
    assert system.runs("g") == [], "nothing ran"
    everything = cdp("sync", "--all", "-c", str(config), "--json")
    assert everything.exit_code == 1
    assert [run["graph"] for run in json.loads(everything.stdout)] == ["other"], "the free graph still runs"
    Leases(system.engine, holder="scheduler-host:7:beef").release("g")
    assert cdp("sync", "g", "-c", str(config)).exit_code == 0


def test_runs_for_one_graph_newest_first(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/store.sqlite", ticks_graph("a", "") + ticks_graph("b", ""))
    for graph in ("a", "b", "a"):
        assert cdp("sync", graph, "-c", str(config)).exit_code == 0
    result = cdp("runs", "--graph", "a", "-c", str(config), "--json")
    history = json.loads(result.stdout)
    assert [r["graph"] for r in history] == ["a", "a"]
    assert history[0]["started_at"] > history[1]["started_at"]
    assert history[0]["status"] == "succeeded" and history[0]["nodes"]["read"]["records_out"] == 6
    table = cdp("runs", "--graph", "b", "-c", str(config))
    assert table.exit_code == 0 and " b " in table.stdout and " a " not in table.stdout


def test_scheduler_run_refuses_bad_options_and_nothing_to_do(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/store.sqlite", ticks_graph("g", ""))
    bad = cdp("scheduler", "run", "-c", str(config), "--log-format", "yaml")
    assert bad.exit_code == 2 and "unknown log format" in bad.stderr
    idle = cdp("scheduler", "run", "-c", str(config))
    assert idle.exit_code == 2 and "nothing to run" in idle.stderr



def test_status_lists_disabled_graphs_and_graphs_that_cannot_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUT_PATH", raising=False)
    body = (
        ticks_graph("off", 'every = "1s"\nenabled = false')
        + ticks_graph("secret", 'schedule = "0 2 * * *"').replace('path = "secret.jsonl"', 'path = "${OUT_PATH}"')
        + ticks_graph("fine", 'every = "1h"')
    )
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/store.sqlite", body)
    result = cdp("scheduler", "status", "-c", str(config), "--json", "--at", "2025-01-10T11:07:30+00:00")
    assert result.exit_code == 0, result.output
    entries = {e["graph"]: e for e in json.loads(result.stdout)}
    assert entries["off"]["enabled"] is False and entries["off"]["trigger"] == "disabled"
    assert entries["off"]["next_run"] is None
    assert entries["secret"]["next_run"] == "2025-01-11T02:00:00+00:00", "its schedule is known all the same"
    assert any("OUT_PATH" in problem for problem in entries["secret"]["unavailable"])
    assert entries["fine"]["unavailable"] is None and entries["fine"]["enabled"] is True
    text = cdp("scheduler", "status", "-c", str(config))
    assert "cannot run" in text.stdout and "disabled" in text.stdout
    refused = cdp("scheduler", "run", "-c", str(config))
    assert refused.exit_code == 2 and "OUT_PATH" in refused.stderr, "an enabled graph's secret is missing"
