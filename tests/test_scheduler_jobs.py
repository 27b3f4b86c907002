"""Plugin jobs (`cdp_register_jobs`): registered, scheduled on their cron slot, run once under a lease, never fatal."""

from __future__ import annotations

from typing import Any

import pytest

from cdp_core import hookimpl
from cdp_core.jobs import Job
from cdp_core.plugins import load_plugins
from cdp_core.scheduler.service import Scheduler
from cdp_core.store import SystemStore
from cdp_core.store.leases import Leases

CALLS: list[str] = []


def _tidy(config: Any) -> str:
    CALLS.append(config.store_url)
    return "3 rows tidied"


def _explode(config: Any) -> str:
    raise RuntimeError("the disk is full")


class Jobs:
    @hookimpl
    def cdp_register_jobs(self, register: Any) -> None:
        register("tidy", Job(schedule="15 3 * * *", run=_tidy, description="tidies"))
        register("explode", Job(schedule="0 * * * 1-5", run=_explode))


class BadJob:
    @hookimpl
    def cdp_register_jobs(self, register: Any) -> None:
        register("nightly", Job(schedule="61 3 * * *", run=_tidy))


def _scheduler(tmp_path: Any, store_url: str) -> Scheduler:
    from cdp_core.config import load_config

    plugins = load_plugins(entry_points=False, extra=[("acme", Jobs())])
    path = tmp_path / "connectors.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n[connectors.f]\ntype = "jsonl_file"\npath = "o.jsonl"\n')
    return Scheduler(load_config(path, plugins, env={}), plugins)


def test_a_plugins_jobs_are_registered_and_listed() -> None:
    plugins = load_plugins(entry_points=False, extra=[("acme", Jobs())])
    assert plugins.info["acme"].registered["jobs"] == ["explode", "tidy"]
    assert [r.type_name for r in plugins.jobs] == ["explode", "tidy"]


def test_a_bad_cron_expression_marks_the_plugin_broken() -> None:
    plugins = load_plugins(entry_points=False, extra=[("acme", BadJob())])
    info = plugins.info["acme"]
    assert info.status == "broken" and "nightly" in (info.error or "") and "61" in (info.error or "")


def test_the_scheduler_adds_each_job_on_its_slot_and_runs_it_once_under_its_lease(tmp_path: Any, store_url: str) -> None:
    scheduler = _scheduler(tmp_path, store_url)
    scheduler.start()
    try:
        tidy, explode = scheduler._aps.get_job("job:tidy"), scheduler._aps.get_job("job:explode")
        assert tidy is not None and explode is not None
        when = tidy.next_run_time
        assert (when.hour, when.minute, when.utcoffset().total_seconds()) == (3, 15, 0), "03:15 UTC"
        assert explode.next_run_time.weekday() < 5, "cron's 1-5: Monday to Friday"

        CALLS.clear()
        assert scheduler.run_job("tidy") == "3 rows tidied" and len(CALLS) == 1
        assert Leases(scheduler.system.engine).holder_of("job:tidy") is None, "the lease is released"
        # Another process holds the job's lease: this slot is left to it.
        other = Leases(scheduler.system.engine, holder="elsewhere", ttl=30)
        assert other.try_acquire("job:tidy") is not None
        assert scheduler.run_job("tidy") is None and len(CALLS) == 1
        other.release("job:tidy")
    finally:
        scheduler.shutdown()
    assert scheduler.run_job("tidy") is None, "a stopping scheduler starts no job"


def test_a_failing_job_is_logged_with_its_plugin_and_does_not_stop_the_scheduler(
    tmp_path: Any, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = _scheduler(tmp_path, store_url)
    result = scheduler.run_job("explode")
    assert result == "failed: RuntimeError: the disk is full"
    assert "job explode of plugin acme failed: RuntimeError: the disk is full" in caplog.text
    assert scheduler.run_job("no-such-job") is None
    SystemStore(store_url).engine.dispose()
