"""The scheduler: runs every graph on its schedule until told to stop, never one graph twice at once.

Why it is built like this:

- APScheduler (``BackgroundScheduler``, a thread pool) fires the triggers; each
  job has ``coalesce=True``, ``max_instances=1`` and a ``misfire_grace_time``, so
  slots missed while this process was busy or suspended run once, late.
- The store decides who runs: every run goes through
  :func:`~cdp_core.scheduler.execute.run_guarded`, which takes the graph's lease.
  A second scheduler (or a ``cdp sync``) finds the lease taken and skips the slot.
  Slots are the same in every process (see triggers.py), and a slot a run in
  another process already served is not run again.
- Missed while down: at start, a graph whose last successful run started before
  its latest slot runs once, at once (not once per missed slot).
- ``depends_on``: a graph with dependencies runs only when the newest finished
  run of each dependency succeeded and none is running. Without a schedule of
  its own it runs after each successful run of a dependency; with one, a slot
  that finds a dependency not ready waits for that dependency's next success.
- Stopping (SIGTERM, SIGINT): no new run starts; a running one ends after the
  batch it is writing is committed (the runner's ``should_stop``); a retry
  waiting for its backoff gives up; then the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import zoneinfo
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from cdp_core import logs
from cdp_core.config import Config
from cdp_core.jobs import Job
from cdp_core.plugins import Plugins
from cdp_core.runinfo import RunStatus
from cdp_core.scheduler.execute import Outcome, prepare, run_guarded
from cdp_core.scheduler.history import last_run, last_success_start
from cdp_core.scheduler.triggers import build_trigger, cron_trigger, dependents, latest_slot, missed_slot
from cdp_core.store import SystemStore
from cdp_core.store.leases import LeaseBusy, Leases
from cdp_core.timeutil import utc_now

log = logging.getLogger("cdp.scheduler")

JOB_PREFIX = "job:"
"""A plugin job's lease (and APScheduler id) is ``job:NAME``: never the name of a graph (graph names have no ':')."""

MISFIRE_GRACE = 3600
"""Seconds a slot may start late (process suspended, pool busy) and still run, once."""


class Scheduler:
    """Runs the scheduled graphs of one config against its store."""

    def __init__(
        self,
        config: Config,
        plugins: Plugins,
        *,
        system: SystemStore | None = None,
        leases: Leases | None = None,
        lease_ttl: float | None = None,
        workers: int = 8,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.system = system or SystemStore(config.store_url).create(plugins.migrations)
        self.leases = leases or Leases(self.system.engine, ttl=lease_ttl)
        self.clock = clock or utc_now
        self.stop_event = threading.Event()
        self.triggers: dict[str, BaseTrigger | None] = {
            name: build_trigger(graph.config) for name, graph in config.graphs.items() if graph.config.enabled
        }
        """Every enabled graph's trigger (None: no schedule of its own); ``enabled = false`` graphs are left out."""
        self.outcomes: deque[Outcome] = deque(maxlen=1000)
        """The latest outcomes, newest last (for tests and for a look from a debugger)."""
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._waiting: set[str] = set()  # scheduled slots waiting for their dependencies
        self._again: set[str] = set()  # triggered by a dependency while running: run once more
        self._aps = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max(1, workers))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE},
            timezone=UTC,
        )

    # -- what runs -------------------------------------------------------------------
    @property
    def runnable(self) -> list[str]:
        """Graphs the scheduler runs: with a schedule, or with dependencies to follow."""
        return [n for n, t in self.triggers.items() if t is not None or self.config.graphs[n].config.depends_on]

    def catch_up(self, now: datetime | None = None) -> dict[str, datetime | None]:
        """Graphs to run once at start, with the slot each one missed (None: a dependency ran since)."""
        now = now or self.clock()
        due: dict[str, datetime | None] = {}
        for name, trigger in self.triggers.items():
            if trigger is not None:
                slot = missed_slot(trigger, last_success_start(self.system, name), now)
                if slot is not None:
                    due[name] = slot
            elif self.config.graphs[name].config.depends_on and self.dependencies_ready(name):
                mine = last_success_start(self.system, name)
                deps = [last_run(self.system, d, RunStatus.succeeded) for d in self.config.graphs[name].config.depends_on]
                if mine is None or any(r and r.finished_at and r.finished_at > mine for r in deps):
                    due[name] = None
        return due

    def dependencies_ready(self, name: str) -> bool:
        """Every dependency's newest finished run succeeded, and none is running now."""
        depends_on = self.config.graphs[name].config.depends_on
        if not depends_on:
            return True
        running = self.leases.current()
        for dep in depends_on:
            finished = last_run(self.system, dep, finished=True)
            if dep in running or finished is None or finished.status is not RunStatus.succeeded:
                return False
        return True

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        prepare(self.config, self.plugins)
        for name, trigger in self.triggers.items():
            if trigger is not None:
                self._aps.add_job(self._on_slot, trigger, args=[name], id=name, name=f"sync {name}")
        for registration in self.plugins.jobs:
            plugin_job: Job = registration.cls
            trigger = cron_trigger(plugin_job.schedule, zoneinfo.ZoneInfo(plugin_job.timezone))
            key = f"{JOB_PREFIX}{registration.type_name}"
            self._aps.add_job(self.run_job, trigger, args=[registration.type_name], id=key, name=f"job {key}")
        due = self.catch_up()
        self._aps.start()
        for name, trigger in self.triggers.items():
            if trigger is not None:
                job = self._aps.get_job(name)
                log.info("%s: next run at %s", name, job.next_run_time.isoformat() if job and job.next_run_time else "never")
        for name, slot in due.items():
            if slot is None:
                log.info("%s: a dependency succeeded since its last run; running it now", name)
            else:
                log.info("%s: no successful run since the slot at %s; running it once now", name, slot.isoformat())
            self.submit(name, "catch-up", slot)

    def run_job(self, name: str) -> str | None:
        """Run the plugin job ``name`` once, under its lease (skipped while another process runs it).

        Returns its summary; a failure is logged (with the plugin's name) and returned as text, never raised:
        the job runs again at its next slot.
        """
        registration = self.plugins.registry.get("job", name)
        if registration is None or self.stop_event.is_set():
            return None
        job: Job = registration.cls
        try:
            with self.leases.hold(f"{JOB_PREFIX}{name}"):
                summary = job.run(self.config)
        except LeaseBusy:
            log.info("job %s: running in another process; this slot is left to it", name)
            return None
        except Exception as exc:  # noqa: BLE001 - a plugin's job must not stop the scheduler
            message = self.config.redact(f"{type(exc).__name__}: {exc}")
            log.error("job %s of plugin %s failed: %s", name, registration.plugin, message)
            return f"failed: {message}"
        log.info("job %s: %s", name, summary or "done")
        return summary

    def request_stop(self, reason: str = "stop requested") -> None:
        if not self.stop_event.is_set():
            log.info("%s: starting no new runs; running ones end after their current batch", reason)
        self.stop_event.set()

    def shutdown(self) -> None:
        """Stop and wait for every running job to end (each finishes its current batch)."""
        self.request_stop()
        try:
            self._aps.shutdown(wait=True)
        except SchedulerNotRunningError:
            pass

    def serve(self, poll: float = 0.5) -> int:
        """Run until SIGTERM or SIGINT (handlers installed here, so call from the main thread); returns 0."""
        def handle(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(signal.Signals(signum).name)

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            log.info("scheduler running %s (holder %s)", ", ".join(self.runnable) or "nothing", self.leases.holder)
            while not self.stop_event.wait(poll):
                pass
            self.shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("scheduler stopped")
        return 0

    # -- running ---------------------------------------------------------------------
    def submit(self, name: str, reason: str, slot: datetime | None = None) -> None:
        """Run a graph as soon as a worker is free (a catch-up, or after a dependency)."""
        if self.stop_event.is_set():
            return
        try:
            self._aps.add_job(
                self._execute, "date", args=[name, reason, slot], id=f"{name}@{reason}",
                name=f"sync {name} ({reason})", replace_existing=True, misfire_grace_time=None,
            )
        except SchedulerNotRunningError:
            pass

    def _on_slot(self, name: str) -> None:
        trigger = self.triggers[name]
        assert trigger is not None
        self._execute(name, "schedule", latest_slot(trigger, self.clock()))

    def _execute(self, name: str, reason: str, slot: datetime | None) -> None:
        if self.stop_event.is_set():
            return
        with self._lock:
            if name in self._active:
                log.info("%s: still running; %s skipped", name, reason)
                if reason.startswith("after "):
                    self._again.add(name)
                return
            self._active.add(name)
        try:
            with logs.context(graph=name):
                self._execute_locked(name, reason, slot)
        except Exception:
            log.exception("%s: could not run (%s)", name, reason)
        finally:
            with self._lock:
                self._active.discard(name)
                again = name in self._again
                self._again.discard(name)
            if again:
                self.submit(name, "after a dependency ran again")

    def _execute_locked(self, name: str, reason: str, slot: datetime | None) -> None:
        if not self.dependencies_ready(name):
            with self._lock:
                self._waiting.add(name)
            log.info("%s: a dependency has not succeeded yet (or is running); waiting for it", name)
            return
        try:
            outcome = run_guarded(
                self.config, self.plugins, self.system, name, leases=self.leases,
                retries=self.config.graphs[name].config.retries, stop=self.stop_event, slot=slot,
            )
        except LeaseBusy as busy:
            log.info("%s; %s skipped", busy, reason)
            self.outcomes.append(Outcome(name, skipped="busy"))
            return
        self.outcomes.append(outcome)
        if outcome.succeeded and not self.stop_event.is_set():
            self._after_success(name)

    def _after_success(self, name: str) -> None:
        for dependent in dependents(((n, self.config.graphs[n].config) for n in self.triggers), name):
            with self._lock:
                waiting = dependent in self._waiting
                self._waiting.discard(dependent)
            if self.triggers[dependent] is None or waiting:
                self.submit(dependent, f"after {name}")
