"""Live per-node progress (records per second) on stderr, and the run summary table."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from cdp_core.runinfo import RunInfo


def run_table(run: RunInfo, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    # "new": rejects not in quarantine before this run (the rest were rejected before, for the same reason).
    # "held back": what the node's export gates kept from it, by reason (no consent for its purpose).
    # "suppressed": what the record screens dropped there (a suppressed person's, docs/privacy.md).
    held = any(stats.held_back for stats in run.nodes.values())
    dropped = any(stats.suppressed for stats in run.nodes.values())
    columns = (
        "node", "kind", "in", "out", "rejected", "new",
        *(("held back",) if held else ()), *(("suppressed",) if dropped else ()), "rec/s", "error",
    )  # fmt: skip
    for column in columns:
        right = column in ("in", "out", "rejected", "new", "suppressed", "rec/s")
        table.add_column(column, justify="right" if right else "left")
    for name, stats in run.nodes.items():
        table.add_row(
            name,
            stats.kind,
            f"{stats.records_in:,}" if stats.kind != "source" else "",
            f"{stats.records_out:,}",
            f"{stats.rejected:,}" if stats.rejected else "",
            f"{stats.new_rejects:,}" if stats.rejected else "",
            *((stats.held_back_text(),) if held else ()),
            *((f"{stats.suppressed:,}" if stats.suppressed else "",) if dropped else ()),
            f"{stats.per_second:,.0f}" if stats.seconds else "",
            stats.error or "",
        )
    return table


class ProgressView:
    """Shows the running graph's node table, refreshed a few times a second, when stderr is a terminal."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal
        self._live: Live | None = None
        self._last = 0.0

    def __enter__(self) -> ProgressView:
        if self.enabled:
            self._live = Live(console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def update(self, run: RunInfo) -> None:
        now = time.monotonic()
        if self._live is not None and now - self._last > 0.2:
            self._last = now
            elapsed = now - run.started_at.timestamp() + time.time() - now
            self._live.update(run_table(run, f"{run.graph} (run {run.id[:8]}, {elapsed:,.0f}s)"))

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, exc, tb)
            self._live = None
