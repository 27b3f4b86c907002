"""One guarded run of a graph: under its lease, with retries and backoff, logged with its run id.

Both ``cdp sync`` and the scheduler go through :func:`run_guarded`, so a manual
sync never overlaps a scheduled one (nor one in another process): whoever does
not get the lease gets :class:`~cdp_core.store.leases.LeaseBusy` and runs nothing.

Retries: a failed attempt is tried again after ``retry_backoff``, then twice
that, four times... (at most an hour), up to ``retries`` more attempts, holding
the lease all along. ``cdp_run_failed`` is held back from the observers until
the last attempt has failed, so an alert fires once per failure, not per try.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cdp_core import logs
from cdp_core.builtins.observers import attach_alerts
from cdp_core.config import Config
from cdp_core.plugins import Plugins
from cdp_core.runinfo import RunInfo, RunStatus
from cdp_core.runner import ProgressCallback, Runner
from cdp_core.scheduler.history import last_success_start
from cdp_core.store import SystemStore
from cdp_core.store.leases import Leases

log = logging.getLogger("cdp.scheduler")

MAX_BACKOFF = 3600.0


@dataclass
class Outcome:
    """What one guarded run did: the last attempt's run (None if nothing ran) and why nothing ran."""

    graph: str
    run: RunInfo | None = None
    attempts: int = 0
    skipped: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.run is not None and self.run.status is RunStatus.succeeded


class _RunPlugins(Plugins):
    """The plugins as the runner sees them in a guarded run.

    ``cdp_run_started`` also binds the new run id into the log context (the
    runner makes the id); ``cdp_run_failed`` is kept for :meth:`release_failure`.
    """

    def __init__(self, inner: Plugins) -> None:
        super().__init__(manager=inner.manager, registry=inner.registry, info=inner.info)
        self.inner = inner
        self.held: dict[str, Any] | None = None

    def notify(self, hook: str, **kwargs: Any) -> None:
        if hook == "cdp_run_started":
            logs.bind(run_id=kwargs["run"].id, graph=kwargs["run"].graph)
        if hook == "cdp_run_failed":
            self.held = kwargs
            return
        super().notify(hook, **kwargs)

    def release_failure(self) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            self.inner.notify("cdp_run_failed", **held)


def backoff(first: float, attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): first, 2*first, 4*first, ... capped."""
    return min(first * 2 ** (attempt - 1), MAX_BACKOFF)


def prepare(config: Config, plugins: Plugins) -> None:
    """What every process that runs graphs needs once: the alert webhook, when configured."""
    alerts = config.root.alerts
    attach_alerts(plugins, alerts.webhook_url, alerts.timeout)


def run_guarded(
    config: Config,
    plugins: Plugins,
    system: SystemStore,
    graph: str,
    *,
    leases: Leases,
    retries: int = 0,
    stop: threading.Event | None = None,
    slot: datetime | None = None,
    on_progress: ProgressCallback | None = None,
    wait: Callable[[float], bool] | None = None,
) -> Outcome:
    """Run ``graph`` under its lease; raise LeaseBusy when another process is running it.

    :param retries: extra attempts after a failure (the scheduler passes the graph's ``retries``).
    :param stop: once set, the run ends after its current batch and no retry starts.
    :param slot: the schedule slot being served; when a successful run started at or after
        it (in another process), the slot counts as served and nothing runs.
    :param wait: waits between attempts; returns True to give up (default: ``stop.wait``).
    """
    stop = stop or threading.Event()
    wait = wait or stop.wait
    with logs.context(graph=graph), leases.hold(graph) as lease:
        if slot is not None:
            served = last_success_start(system, graph)
            if served is not None and served >= slot:
                log.info("%s: the slot of %s was served by a run that started at %s", graph, slot.isoformat(), served.isoformat())
                return Outcome(graph, skipped="slot already served")
        def should_stop() -> bool:
            return stop.is_set() or lease.lost.is_set()

        wrapped = _RunPlugins(plugins)
        # The runner fences each checkpoint commit with the lease: a batch committed after
        # the lease was taken over (this process was frozen) is refused (LeaseLost).
        runner = Runner(config, wrapped, system, on_progress=on_progress, should_stop=should_stop, lease=lease)
        outcome = Outcome(graph)
        for attempt in range(1, retries + 2):
            outcome.attempts = attempt
            outcome.run = runner.run(graph)
            if outcome.run.status in (RunStatus.succeeded, RunStatus.interrupted):
                if outcome.run.status is RunStatus.interrupted:
                    why = "its lease was lost" if lease.lost.is_set() else "stopping"
                    # A requested stop is routine; a lost lease is not.
                    log.log(
                        logging.INFO if why == "stopping" else logging.WARNING,
                        "%s: run %s interrupted (%s) after a committed batch; the next run resumes from the cursor",
                        graph, outcome.run.id, why,
                    )
                wrapped.held = None
                return outcome
            if attempt > retries or stop.is_set() or lease.lost.is_set():
                break
            delay = backoff(config.graphs[graph].config.backoff_seconds, attempt)
            log.warning(
                "%s: attempt %d of %d failed (%s); next attempt in %.1fs",
                graph, attempt, retries + 1, outcome.run.error, delay,
            )
            if wait(delay):
                log.warning("%s: stopping; no further attempt", graph)
                break
        if retries:
            log.error("%s: failed after %d attempt(s)", graph, outcome.attempts)
        wrapped.release_failure()
        return outcome
