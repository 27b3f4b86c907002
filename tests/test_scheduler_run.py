"""The scheduler in this process: intervals, no overlap, missed windows, depends_on, retries, alerts, stopping.

Intervals are 1 s and every wait is bounded; the scheduler is always shut down.
Two schedulers as real processes, and SIGTERM / SIGKILL, are in test_scheduler_processes.py.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any, Self
from unittest.mock import ANY

import pytest
import test_scheduler_kit as kit
from test_scheduler_kit import assert_no_overlap, load, runs, ticks_graph, wait_for

from cdp_core.config import Config
from cdp_core.plugins import Plugins
from cdp_core.runinfo import RunInfo, RunStatus
from cdp_core.scheduler import Scheduler, run_guarded
from cdp_core.scheduler.triggers import build_trigger, latest_slot
from cdp_core.store import SystemStore
from cdp_core.store.leases import LeaseBusy, Leases


@contextmanager
def scheduling(config: Config, plugins: Plugins, **options: Any) -> Iterator[Scheduler]:
    scheduler = Scheduler(config, plugins, **options)
    scheduler.start()
    try:
        yield scheduler
    finally:
        scheduler.shutdown()
        scheduler.system.engine.dispose()


def finished(store_url: str, graph: str, status: str | None = None) -> list[kit.Interval]:
    return [r for r in runs(store_url, graph) if r.finished_at is not None and (status is None or r.status == status)]


def seed_run(store_url: str, graph: str, started: datetime, status: RunStatus = RunStatus.succeeded) -> None:
    system = SystemStore(store_url).create()
    run = RunInfo(id=f"seed-{graph}", graph=graph, started_at=started)
    system.start_run(run)
    run.status, run.finished_at = status, started + timedelta(seconds=1)
    system.save_run(run)
    system.engine.dispose()


# -- running on time, never twice at once ----------------------------------------------------


def test_a_graph_on_a_1s_interval_runs_again_and_again(tmp_path: Path, store_url: str) -> None:
    config, plugins = load(tmp_path, store_url, ticks_graph("tick", 'every = "1s"'))
    with scheduling(config, plugins):
        wait_for(lambda: len(finished(store_url, "tick")) >= 4, 10, "four runs")
    done = runs(store_url, "tick")
    assert len(done) >= 4 and all(r.status == "succeeded" for r in done)
    assert_no_overlap(done)
    # scheduled runs (after the first, a catch-up at start) each serve their own whole-second slot
    slots = [int(r.started_at.timestamp()) for r in done[1:]]
    assert len(set(slots)) == len(slots), [r.started_at.isoformat() for r in done]
    assert (tmp_path / "tick.jsonl").read_text().count("\n") == 6 * len(done)


def test_a_disabled_graph_is_not_scheduled(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    body = ticks_graph("on", 'every = "1s"') + ticks_graph("off", 'every = "1s"\nenabled = false')
    config, plugins = load(tmp_path, store_url, body)
    with scheduling(config, plugins) as scheduler:
        wait_for(lambda: len(finished(store_url, "on")) >= 2, 10, "two runs")
    assert scheduler.runnable == ["on"] and runs(store_url, "off") == []


def test_a_slow_graph_is_never_overlapped(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    config, plugins = load(tmp_path, store_url, ticks_graph("slow", 'every = "1s"', pages=5, sleep=0.3))
    with scheduling(config, plugins) as scheduler:
        wait_for(lambda: any(r.finished_at is None for r in runs(store_url, "slow")), 5, "a run in progress")
        other = Leases(scheduler.system.engine, holder="manual-sync")
        with pytest.raises(LeaseBusy):  # what `cdp sync slow` meets now
            run_guarded(config, plugins, scheduler.system, "slow", leases=other)
        wait_for(lambda: len(finished(store_url, "slow")) >= 3, 15, "three slow runs")
    done = runs(store_url, "slow")
    assert all(r.finished_at is not None for r in done), "shutdown waits for the running run"
    assert_no_overlap(done)
    assert all(r.finished_at - r.started_at >= timedelta(seconds=1.4) for r in done)  # type: ignore[operator]


def test_two_schedulers_on_one_store_take_turns(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    config, plugins = load(tmp_path, store_url, ticks_graph("slow", 'every = "1s"', pages=3, sleep=0.25))
    second, _ = load(tmp_path, store_url, ticks_graph("slow", 'every = "1s"', pages=3, sleep=0.25))
    with scheduling(config, plugins) as one, scheduling(second, plugins) as two:
        wait_for(lambda: len(finished(store_url, "slow")) >= 4, 15, "four runs")
    assert one.leases.holder != two.leases.holder
    done = runs(store_url, "slow")
    assert_no_overlap(done)
    skipped = [o for o in [*one.outcomes, *two.outcomes] if o.skipped]
    assert skipped, "the two schedulers met on a slot at least once"


def test_a_slot_served_by_another_process_is_not_run_again(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    config, plugins = load(tmp_path, store_url, ticks_graph("g", 'every = "1h"'))
    system = SystemStore(store_url).create()
    slot = datetime.now(UTC) - timedelta(minutes=1)
    seed_run(store_url, "g", slot + timedelta(seconds=2))
    outcome = run_guarded(config, plugins, system, "g", leases=Leases(system.engine), slot=slot)
    assert outcome.skipped == "slot already served" and outcome.run is None
    outcome = run_guarded(config, plugins, system, "g", leases=Leases(system.engine), slot=slot + timedelta(seconds=3))
    assert outcome.succeeded
    system.engine.dispose()


# -- missed while down -----------------------------------------------------------------------------


def test_a_missed_window_runs_once_at_start(tmp_path: Path, store_url: str) -> None:
    now = datetime.now(UTC)
    # rare slots, so that no regular slot comes while the test runs
    body = (
        ticks_graph("monthly", 'every = "30d"')
        + ticks_graph("yearly", 'schedule = "0 0 1 1 *"')
        + ticks_graph("current", 'every = "30d"')
    )
    config, plugins = load(tmp_path, store_url, body)
    trigger = build_trigger(config.graphs["current"].config)
    assert trigger is not None
    seed_run(store_url, "monthly", now - timedelta(days=100))  # three or four slots missed
    seed_run(store_url, "yearly", now - timedelta(days=800))  # two or three yearly slots missed
    seed_run(store_url, "current", latest_slot(trigger, now) + timedelta(seconds=1))  # type: ignore[operator]
    with scheduling(config, plugins):
        wait_for(lambda: len(finished(store_url, "monthly")) >= 2 and len(finished(store_url, "yearly")) >= 2, 10, "catch-ups")
        time.sleep(2.5)  # anything more would have started by now
    assert len(runs(store_url, "monthly")) == 2, "one catch-up run, not one per missed slot"
    assert len(runs(store_url, "yearly")) == 2
    assert len(runs(store_url, "current")) == 1, "its latest slot was served before the scheduler went down"


def test_catch_up_at_a_fixed_moment(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    body = ticks_graph("a", 'every = "10m"') + ticks_graph("b", 'schedule = "0 2 * * *"') + ticks_graph(
        "c", "depends_on = [\"a\"]"
    )
    config, plugins = load(tmp_path, store_url, body)
    now = datetime(2025, 1, 10, 11, 7, tzinfo=UTC)
    seed_run(store_url, "a", datetime(2025, 1, 10, 10, 30, tzinfo=UTC))
    seed_run(store_url, "b", datetime(2025, 1, 10, 2, 0, 3, tzinfo=UTC))
    scheduler = Scheduler(config, plugins)
    due = scheduler.catch_up(now)
    assert due == {"a": datetime(2025, 1, 10, 11, 0, tzinfo=UTC), "c": None}  # c: a succeeded since c last did
    seed_run(store_url, "c", datetime(2025, 1, 10, 10, 40, tzinfo=UTC))
    assert scheduler.catch_up(now) == {"a": datetime(2025, 1, 10, 11, 0, tzinfo=UTC)}
    scheduler.system.engine.dispose()


# -- depends_on ------------------------------------------------------------------------------------


def test_a_dependent_graph_runs_after_its_dependency_succeeded(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    counter = tmp_path / "explosions"
    body = (
        ticks_graph("ingest", 'every = "1s"', sleep=0.1)
        + ticks_graph("export", 'depends_on = ["ingest"]')
        + ticks_graph("broken", 'every = "1s"')
        + f'[syncs.broken.nodes.fail]\ntransform = "explode"\ninputs = ["read"]\noptions = {{ counter = "{counter}" }}\n'
        + ticks_graph("after_broken", 'depends_on = ["ingest", "broken"]')
        + ticks_graph("scheduled_after_broken", 'every = "1s"\ndepends_on = ["broken"]')
    )
    body = body.replace('[syncs.broken.nodes.write]\ndestination = "broken_out"\ninputs = ["read"]',
                        '[syncs.broken.nodes.write]\ndestination = "broken_out"\ninputs = ["fail"]')
    config, plugins = load(tmp_path, store_url, body)
    with scheduling(config, plugins):
        wait_for(lambda: len(finished(store_url, "export")) >= 3, 15, "three export runs")
        wait_for(lambda: len(finished(store_url, "broken")) >= 2, 5, "broken runs")
    ingest = finished(store_url, "ingest", "succeeded")
    for export in runs(store_url, "export"):
        before = [r for r in ingest if r.finished_at <= export.started_at]  # type: ignore[operator]
        assert before, f"export {export.id} started before any ingest run finished"
    assert_no_overlap(runs(store_url, "export"))
    assert runs(store_url, "after_broken") == [], "one dependency never succeeds"
    assert runs(store_url, "scheduled_after_broken") == [], "its slots wait for the dependency"


# -- retries, the failure hook, the webhook ------------------------------------------------------------


class Hook:
    """A real HTTP server on 127.0.0.1 recording the POSTs it gets."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append((self.path, json.loads(body)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/SECRET-TOKEN-123"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def failing_graph(counter: Path, failures: int, schedule: str = 'every = "30d"', retries: int = 2) -> str:
    body = ticks_graph("flaky", schedule, extra=f"retries = {retries}\nretry_backoff = 0.2")
    body = body.replace(
        '[syncs.flaky.nodes.write]\ndestination = "flaky_out"\ninputs = ["read"]',
        f'[syncs.flaky.nodes.fail]\ntransform = "explode"\ninputs = ["read"]\n'
        f'options = {{ counter = "{counter}", failures = {failures} }}\n'
        '[syncs.flaky.nodes.write]\ndestination = "flaky_out"\ninputs = ["fail"]',
    )
    return body + '\n[alerts]\nwebhook_url = "${HOOK}"\ntimeout = 5\n'


def test_retries_with_backoff_then_one_failure_hook_and_one_webhook_post(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    kit.FAILED_HOOKS.clear()
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    with Hook() as hook:
        config, plugins = load(tmp_path, store_url, failing_graph(tmp_path / "n", -1), env={"HOOK": hook.url})
        with scheduling(config, plugins):
            wait_for(lambda: hook.posts, 15, "the webhook POST")
            time.sleep(0.5)
        attempts = runs(store_url, "flaky")
        assert [r.status for r in attempts] == ["failed"] * 3, "the first attempt and two retries"
        gaps = [b.started_at - a.finished_at for a, b in pairwise(attempts)]  # type: ignore[operator]
        assert gaps[0] >= timedelta(seconds=0.2) and gaps[1] >= timedelta(seconds=0.4), gaps
        assert kit.FAILED_HOOKS == [("flaky", attempts[-1].id)], "the hook fires once, for the final failure"
        [(path, payload)] = hook.posts
    assert path == "/hooks/SECRET-TOKEN-123"
    assert payload["event"] == "cdp.run_failed" and payload["graph"] == "flaky"
    assert payload["run_id"] == attempts[-1].id and payload["status"] == "failed"
    assert "boom number 3" in payload["error"]
    assert payload["counts"] == {"read": 2, "written": 0, "rejected": 0, "already_quarantined": 0, "held_back": 0, "suppressed": 0}
    assert payload["nodes"]["fail"]["in"] == 2 and payload["duration_seconds"] >= 0
    final = [r for r in caplog.records if r.name == "cdp.runs" and r.levelno == logging.ERROR]
    assert len(final) == 1 and attempts[-1].id in final[0].getMessage(), "the logging observer logs the final failure"
    retried = [r.getMessage() for r in caplog.records if "next attempt in" in r.getMessage()]
    assert len(retried) == 2
    assert not [r for r in caplog.records if "SECRET-TOKEN" in r.getMessage()], "the webhook URL is never logged"


def test_a_run_that_succeeds_on_retry_raises_no_alert(tmp_path: Path) -> None:
    kit.FAILED_HOOKS.clear()
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    with Hook() as hook:
        config, plugins = load(tmp_path, store_url, failing_graph(tmp_path / "n", 2), env={"HOOK": hook.url})
        with scheduling(config, plugins):
            wait_for(lambda: finished(store_url, "flaky", "succeeded"), 10, "the successful retry")
        assert [r.status for r in runs(store_url, "flaky")] == ["failed", "failed", "succeeded"]
        assert hook.posts == [] and kit.FAILED_HOOKS == []


@pytest.mark.parametrize("server", ["error", "unreachable"])
def test_a_failing_webhook_is_logged_and_the_scheduler_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, server: str
) -> None:
    caplog.set_level(logging.INFO)
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    with Hook(status=500) as hook:
        url = hook.url
        if server == "unreachable":
            with socket.socket() as probe:  # a port nothing listens on
                probe.bind(("127.0.0.1", 0))
                url = url.replace(str(hook.server.server_address[1]), str(probe.getsockname()[1]))
        body = failing_graph(tmp_path / "n", -1, schedule='every = "1s"', retries=0)
        config, plugins = load(tmp_path, store_url, body, env={"HOOK": url})
        with scheduling(config, plugins):
            wait_for(lambda: len(finished(store_url, "flaky")) >= 3, 10, "three failed runs")
    warnings = [r.getMessage() for r in caplog.records if r.name == "cdp.alerts"]
    assert len(warnings) >= 2
    expected = "answered HTTP 500" if server == "error" else "ConnectError"
    assert all(expected in w for w in warnings), warnings
    assert not [r for r in caplog.records if "SECRET-TOKEN" in r.getMessage() or "SECRET-TOKEN" in (r.exc_text or "")]


# -- stopping --------------------------------------------------------------------------------------


def test_stopping_ends_a_run_after_its_committed_batch(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.sqlite"
    config, plugins = load(tmp_path, store_url, ticks_graph("long", 'every = "30d"', pages=100, sleep=0.05))
    system = SystemStore(store_url).create()
    with scheduling(config, plugins) as scheduler:
        wait_for(lambda: (system.cursor("long", "read") or 0) >= 3, 10, "three committed pages")
        started = time.monotonic()
    assert time.monotonic() - started < 2, "shutdown waited for one batch, not the whole run"
    [run] = runs(store_url, "long")
    assert run.status == "interrupted" and run.finished_at is not None, "so the next start catches up"
    assert Scheduler(config, plugins).catch_up() == {"long": ANY}
    pages = system.cursor("long", "read")
    assert 3 <= pages < 100
    assert (tmp_path / "long.jsonl").read_text().count("\n") == 2 * pages, "every committed page written, no more"
    assert scheduler.stop_event.is_set()
    system.engine.dispose()
