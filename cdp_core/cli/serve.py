"""`cdp serve`: the ingestion HTTP API (Segment's Tracking API, vendor webhooks) and the continuous graphs."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import typer

from cdp_core import logs
from cdp_core.cli import common
from cdp_core.cli.common import ConfigOption, stderr


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on."),
    config: Path = ConfigOption,
    poll: float = typer.Option(
        1.0, "--poll", min=0.05, help="Seconds between looks at the ingest log for continuous graphs (other processes' writes)."
    ),
) -> None:
    """Accept Segment-compatible /v1 calls and webhooks into the ingest log; run continuous graphs. Stops on SIGTERM."""
    import uvicorn

    from cdp_core.scheduler.execute import prepare
    from cdp_core.serve.runtime import ServeConfigError, build_serving

    cfg, loaded = common.load(config)
    logs.configure(None, cfg.redact)
    system = common.open_store(cfg, loaded, create=True)
    prepare(cfg, loaded)
    try:
        serving = build_serving(cfg, loaded, system, poll=poll)
    except ServeConfigError as exc:
        for problem in exc.problems:
            stderr.print(f"error: {cfg.redact(problem)}", style="bold red", highlight=False, markup=False)
        raise typer.Exit(common.EXIT_USAGE) from None
    state = serving.state
    for note in serving.notes:
        stderr.print(f"warning: {cfg.redact(note)}", style="yellow", highlight=False, markup=False)
    logging.getLogger("cdp.serve").setLevel(logging.INFO)
    stderr.print(
        f"cdp serve: http://{host}:{port} ({len(state.sources)} tracking API sources, {len(state.webhooks)} webhooks, "
        f"{len(serving.worker.graphs)} continuous graphs: {', '.join(serving.worker.graphs) or 'none'})",
        highlight=False,
        markup=False,
    )
    server = uvicorn.Server(
        uvicorn.Config(serving.app(), host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    )
    # uvicorn stops on SIGTERM/SIGINT (in-flight requests answered, then the lifespan's shutdown: the
    # continuous graphs stop after their batch, the committer commits what is queued) and then raises
    # the signal again for the handlers it found: these note it, so the process exits 0, a clean stop.
    stopped: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: stopped.append(signum)) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    system.engine.dispose()
    if not server.started:
        raise typer.Exit(common.EXIT_FAILED)
