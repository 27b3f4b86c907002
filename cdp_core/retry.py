"""``cdp quarantine retry``: quarantined records sent again from the node that rejected them.

A retry is a run of its own (``RunInfo.kind == "retry"``): a row in the run history with
per-node counts, under the graph's lease, with today's config and plugins. Each
quarantined record re-enters the graph where it was stopped:

- rejected by a **source** node (its payload is the input as read): the source's stream
  reads it again (:meth:`Stream.parse <cdp_core.base.Stream.parse>`; the file sources run
  it through their own parsing), and the record goes on to the node's children. A stream
  that cannot read a payload on its own passes a payload that is a whole record on as it
  is; any other payload stays in quarantine untouched;
- rejected by a **transform**: into that transform, and on through the graph;
- rejected by a **destination**: to that destination only.

No cursor moves. Batches go through the runner's own delivery (``_Execution._push`` and
``_deliver``), so the rows a batch resolves are deleted in the transaction that commits
the batch's checkpoint: with the profile store, the same transaction that writes the
records (exactly once into the store). A record rejected again for a new reason replaces
its row; one rejected again for the same reason keeps its row as it was. Destinations
the retried records cannot reach are not opened, and no destination's ``finish`` runs: a
retry is never a complete picture.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from cdp_core import logs
from cdp_core.base import Stream
from cdp_core.config import Config
from cdp_core.graph import Node, SyncGraph
from cdp_core.plugins import Plugins
from cdp_core.records import JsonValue, Record, Rejected
from cdp_core.runinfo import RunInfo
from cdp_core.runner import ProgressCallback, Runner, _Execution, describe_error, paused_gc
from cdp_core.scheduler.execute import _RunPlugins
from cdp_core.screens import suppressed
from cdp_core.store import SystemStore
from cdp_core.store.leases import Leases
from cdp_core.store.system import QuarantineEntry

log = logging.getLogger("cdp.retry")

CHUNK = 1_000
"""Quarantine rows sent again per batch (one checkpoint, one transaction of the store)."""

WHERE = re.compile(r"\bline \d+(?:-\d+)?(?:, byte \d+)?:?\s*")
"""Where in its file a problem was met ("line 7: ", "line 3-4: "): a retried payload has no such place."""


def same_problem(first: str, again: str) -> bool:
    """Whether two reasons tell the same problem, but for where it was met."""
    return WHERE.sub("", first) == WHERE.sub("", again)


@dataclass
class Retry:
    """The quarantine rows of one graph a retry run sends again, and what became of them."""

    entries: list[QuarantineEntry]
    chunk: int = CHUNK
    sent: int = 0
    """Rows sent again (each either passed, or is in quarantine again with today's reason)."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Rows not sent, left in quarantine as they were, by why."""

    def execution(self, runner: Runner, graph: SyncGraph, run: RunInfo) -> RetryExecution:
        return RetryExecution(runner, graph, run, self)


class RetryExecution(_Execution):
    """A run that sends quarantine rows into the graph instead of reading its sources."""

    def __init__(self, runner: Runner, graph: SyncGraph, run: RunInfo, retry: Retry) -> None:
        super().__init__(runner, graph, run)
        self.retry = retry
        self._streams: dict[str, Stream] = {}

    def execute(self) -> BaseException | None:
        first_error: BaseException | None = None
        try:
            entries = [e for e in self.retry.entries if self._known(e)]
            self._build()
            reachable = self._reachable({e.node for e in entries})
            self.destinations = {n: d for n, d in self.destinations.items() if n in reachable}
            for dest in self.destinations.values():
                dest.open()
            complete = True
            for start in range(0, len(entries), self.retry.chunk):
                if self.runner.should_stop():
                    complete = False
                    break
                with paused_gc():
                    self._send(entries[start : start + self.retry.chunk])
            self.complete = complete
        except Exception as exc:  # noqa: BLE001 - recorded as the run's error
            first_error = exc
        finally:
            closables: list[tuple[str, Any]] = [
                *self.destinations.items(),
                *self.sources.items(),
                *((name, gate) for name, gates in self.gates.items() for gate in gates),
            ]
            for name, closable in closables:
                try:
                    closable.close()
                except Exception as exc:  # noqa: BLE001
                    log.error("run %s: closing %s failed: %s", self.run.id, name, self.redact(describe_error(exc)))
                    first_error = first_error or exc
        return first_error

    def _known(self, entry: QuarantineEntry) -> bool:
        if entry.node in self.graph.nodes:
            return True
        self.retry.skipped[f"node {entry.node!r} is no longer in graph {self.graph.name!r}"] += 1
        return False

    def _reachable(self, starts: set[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(starts)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.graph.nodes[name].children)
        return seen

    def _send(self, chunk: list[QuarantineEntry]) -> None:
        payloads = self.runner.system.payloads([e.id for e in chunk])
        rejected: list[tuple[str, Rejected]] = []
        resolved: list[int] = []
        from_sources: dict[str, list[Record]] = {}
        entering: dict[str, list[Record]] = {}
        for entry in chunk:
            if entry.id not in payloads:
                continue  # removed since it was selected
            payload = payloads[entry.id]
            node = self.graph.nodes[entry.node]
            if self.screens and suppressed(self.screens, Rejected(reason=entry.reason, raw=payload, key=entry.record_key)):
                # A suppressed person's entry is not sent again: counted, and its row deleted with this chunk.
                self.run.nodes[node.name].suppressed += 1
                resolved.append(entry.id)
                continue
            if node.role == "source":
                outcome = self._parse(node, entry, payload)
                if outcome is None:
                    self.retry.skipped[f"source {node.name!r} cannot read a quarantined payload again"] += 1
                    continue
                stats = self.run.nodes[node.name]
                if isinstance(outcome, Rejected):
                    stats.rejected += 1
                    rejected.append((node.name, outcome))
                else:
                    self.attach_traits(node, [outcome])
                    from_sources.setdefault(node.name, []).append(outcome)
            else:
                record = as_record(payload)
                if record is None:
                    self.retry.skipped[f"the payload quarantined by {node.name!r} is not a record"] += 1
                    continue
                entering.setdefault(node.name, []).append(record)
            resolved.append(entry.id)
        batches: dict[str, list[Record]] = {}
        for name, records in from_sources.items():
            kept = self.screen(name, records)
            self.run.nodes[name].records_out += len(kept)
            self._push(name, kept, batches, rejected)
        for name, records in entering.items():
            self._enter(name, records, batches, rejected, screen=True)
        checkpoint = self.checkpoint({}, rejected, resolved=resolved)
        self._deliver(batches, checkpoint)
        self.retry.sent += len(resolved)
        for where, rej in checkpoint.quarantined():
            self.runner.plugins.notify("cdp_record_rejected", run=self.run, node=where, rejected=rej)
        if self.runner.on_progress:
            self.runner.on_progress(self.run)

    def _parse(self, node: Node, entry: QuarantineEntry, payload: JsonValue) -> Record | Rejected | None:
        if node.name not in self._streams:
            self._streams[node.name] = self.sources[node.connector].stream(node.stream)
        try:
            outcome = self._streams[node.name].parse(payload)
        except Exception as exc:  # noqa: BLE001 - this record only: it stays in quarantine, saying why
            reason = f"reading the quarantined payload again failed: {self.redact(describe_error(exc))}"
            return Rejected(reason=reason, raw=payload, key=entry.record_key)
        if outcome is None:
            return as_record(payload)
        if isinstance(outcome, Rejected) and same_problem(entry.reason, outcome.reason):
            # The same problem, told without where it was first met (a file's line): keep the first telling.
            return Rejected(reason=entry.reason, raw=payload, key=entry.record_key)
        return outcome


def as_record(payload: JsonValue) -> Record | None:
    """The record a quarantined payload holds (``Record.raw()``), or None if it holds none."""
    if not isinstance(payload, dict):
        return None
    try:
        return Record.model_validate(payload)
    except ValidationError:
        return None


def retry_guarded(
    config: Config,
    plugins: Plugins,
    system: SystemStore,
    graph: str,
    retry: Retry,
    *,
    leases: Leases,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunInfo:
    """Run ``retry`` under the graph's lease (raise LeaseBusy when it is running elsewhere)."""
    stop = should_stop or (lambda: False)
    with logs.context(graph=graph), leases.hold(graph) as lease:
        wrapped = _RunPlugins(plugins)
        runner = Runner(
            config, wrapped, system, on_progress=on_progress, should_stop=lambda: stop() or lease.lost.is_set(), lease=lease
        )
        run = runner.run(graph, retry)
        wrapped.release_failure()  # a failed retry alerts once, as a failed sync does
        return run
