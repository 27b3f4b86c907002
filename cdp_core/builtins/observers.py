"""Builtin observers: a logger for every run's start, end and failure, and an alert webhook.

Both use the lifecycle hooks as any plugin would. The logging observer is always
registered (``cdp.observers``). The webhook observer is registered by whoever
runs graphs (the scheduler, ``cdp sync``) when ``[alerts] webhook_url`` is set,
see :func:`attach_alerts`: it needs the config, which plugins are loaded before.
In the scheduler, ``cdp_run_failed`` fires once per failed run *after* its
retries, so one alert means "this graph failed for good".
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx

from cdp_core import hookimpl
from cdp_core.runinfo import RunInfo, RunKind

log = logging.getLogger("cdp.runs")
alerts_log = logging.getLogger("cdp.alerts")

WEBHOOK_PLUGIN = "cdp.alerts.webhook"
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


@hookimpl
def cdp_run_started(run: RunInfo) -> None:
    log.info("run %s of %s started", run.id, run.graph, extra={"run_id": run.id, "graph": run.graph})


@hookimpl
def cdp_run_finished(run: RunInfo) -> None:
    counts = ", ".join(
        f"{n}: {s.records_in}->{s.records_out} ({s.rejected} rejected, {s.new_rejects} new)" for n, s in run.nodes.items()
    )
    what = "run" if run.kind is RunKind.sync else str(run.kind)
    log.info("%s %s of %s succeeded: %s", what, run.id, run.graph, counts, extra={"run_id": run.id, "graph": run.graph})


@hookimpl
def cdp_run_failed(run: RunInfo, error: BaseException) -> None:
    del error  # run.error holds the redacted text; the exception's may carry a secret
    log.error("run %s of %s failed: %s", run.id, run.graph, run.error, extra={"run_id": run.id, "graph": run.graph})


def failure_payload(run: RunInfo) -> dict[str, Any]:
    """The JSON an alert webhook receives: which graph and run, the (redacted) error, counts and timing."""
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return {
        "event": "cdp.run_failed",
        "graph": run.graph,
        "run_id": run.id,
        "kind": str(run.kind),
        "status": str(run.status),
        "error": run.error,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_seconds": duration,
        "counts": run.totals().to_dict(),
        "nodes": {
            name: {"kind": s.kind, "in": s.records_in, "out": s.records_out, "rejected": s.rejected, "error": s.error}
            for name, s in run.nodes.items()
        },
    }


class WebhookObserver:
    """POSTs :func:`failure_payload` to a URL. A failing webhook is logged and never
    raises; the URL (which often carries a token) never appears in a log line."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._url = url
        self.timeout = timeout

    def _clean(self, text: str) -> str:
        return _URL.sub("<url>", text.replace(self._url, "<webhook>"))

    @hookimpl
    def cdp_run_failed(self, run: RunInfo, error: BaseException) -> None:
        del error
        ids = {"run_id": run.id, "graph": run.graph}
        try:
            response = httpx.post(
                self._url, json=failure_payload(run), timeout=self.timeout, headers={"User-Agent": "cdp-alerts"}
            )
        except Exception as exc:  # noqa: BLE001 - an alert that cannot be sent must not stop the scheduler
            alerts_log.warning(
                "alert webhook for run %s of %s failed: %s: %s",
                run.id, run.graph, type(exc).__name__, self._clean(str(exc)), extra=ids,
            )
            return
        if response.status_code >= 400:
            alerts_log.warning(
                "alert webhook for run %s of %s answered HTTP %d", run.id, run.graph, response.status_code, extra=ids
            )
        else:
            alerts_log.info("alert for run %s of %s sent to the webhook", run.id, run.graph, extra=ids)


def attach_alerts(plugins: Any, webhook_url: str | None, timeout: float) -> None:
    """Register the webhook observer on a plugin manager once, if a URL is configured."""
    manager = plugins.manager
    if webhook_url and manager.get_plugin(WEBHOOK_PLUGIN) is None:
        manager.register(WebhookObserver(webhook_url, timeout), name=WEBHOOK_PLUGIN)
