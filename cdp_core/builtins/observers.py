"""Builtin observer: logs every run's start, end and failure (the lifecycle hooks, used as any plugin would)."""

from __future__ import annotations

import logging

from cdp_core import hookimpl
from cdp_core.runinfo import RunInfo

log = logging.getLogger("cdp.runs")


@hookimpl
def cdp_run_started(run: RunInfo) -> None:
    log.info("run %s of %s started", run.id, run.graph, extra={"run_id": run.id, "graph": run.graph})


@hookimpl
def cdp_run_finished(run: RunInfo) -> None:
    counts = ", ".join(f"{n}: {s.records_in}->{s.records_out} ({s.rejected} rejected)" for n, s in run.nodes.items())
    log.info("run %s of %s succeeded: %s", run.id, run.graph, counts, extra={"run_id": run.id, "graph": run.graph})


@hookimpl
def cdp_run_failed(run: RunInfo, error: BaseException) -> None:
    del error  # run.error holds the redacted text; the exception's may carry a secret
    log.error("run %s of %s failed: %s", run.id, run.graph, run.error, extra={"run_id": run.id, "graph": run.graph})
