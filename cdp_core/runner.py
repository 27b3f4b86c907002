"""Runs a sync graph: pages stream from each source through transforms to destinations.

Memory stays bounded by one page per source: a page is pushed through the whole
graph and made durable before the next is read. A source's cursor is committed
only once every destination it feeds has its batch durably; the last destination
that shares the store's database commits it in the same transaction as its batch.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy.exc

from cdp_core.base import SKIPPED_DELETION, ConnectorContext, Destination, Page, Source, Transform, TransformContext
from cdp_core.config import Config
from cdp_core.gates import ExportGate, served_purpose
from cdp_core.graph import Node, SyncGraph
from cdp_core.http import HttpFactory
from cdp_core.plugins import Plugins
from cdp_core.records import Record, RecordKind, Rejected
from cdp_core.runinfo import NodeStats, RunInfo, RunKind, RunStatus
from cdp_core.screens import RecordScreen, suppressed
from cdp_core.secrets import cut
from cdp_core.store import Checkpoint, SystemStore
from cdp_core.store.leases import Lease
from cdp_core.timeutil import utc_now
from cdp_core.traits import TraitMap

if TYPE_CHECKING:
    from cdp_core.retry import Retry

log = logging.getLogger("cdp.runner")

ProgressCallback = Callable[[RunInfo], None]


MAX_ERROR = 500


@contextmanager
def paused_gc() -> Iterator[None]:
    """No automatic cyclic garbage collection inside the block (one page, read to commit).

    A page holds thousands of live records, and pushing it through the graph allocates
    millions of short-lived containers: the collector's passes walk the live page again
    and again, yet find almost nothing (refcounting frees the page's objects when it is
    done). Measured on bench/ingest.py: a quarter of the run's time at 100,000 persons, a
    tenth at 1,000,000 (bench/README.md). Between pages the collector runs as usual, so
    cycles made during a page are collected after it; a collector that the embedding
    program disabled stays disabled.

    The switch is process-wide: runs in threads (the scheduler's workers) share it. The
    page that turned the collector off turns it back on; a page that started while it was
    off leaves it alone. So it is never left off, and it runs whenever that page is done.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def describe_error(exc: BaseException, redact: Callable[[str], str] | None = None) -> str:
    """A short, single-paragraph error text for runs, logs and the CLI.

    Database errors carry their SQL parameters, which hold customer data: only
    the driver's message is kept, never the statement or the rows. ``redact``
    (the config's Redactor) runs *before* the text is cut to ``MAX_ERROR``: a
    secret cut first would no longer be recognised.
    """
    if isinstance(exc, sqlalchemy.exc.StatementError) and exc.orig is not None:
        text = f"{type(exc).__name__} ({type(exc.orig).__name__}): {str(exc.orig).splitlines()[0] if str(exc.orig) else ''}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return cut(" ".join(text.split()), MAX_ERROR, redact)


class RunFailed(Exception):
    """A node of the run failed; the run is recorded and state stays at the last commit."""


class Runner:
    """Runs the graphs of one loaded config against one store."""

    def __init__(
        self,
        config: Config,
        plugins: Plugins,
        system: SystemStore | None = None,
        *,
        services: dict[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.system = system or SystemStore(config.store_url).create(plugins.migrations)
        self.services = services or {}
        self.http = HttpFactory(redactor=config.redact)
        """The HTTP client factory handed to plugins as ``services["http"]``, bound to each connector."""
        self.on_progress = on_progress
        self.should_stop = should_stop or (lambda: False)
        self.lease = lease
        """The graph's lease when run under one: every checkpoint commit verifies it is still held."""

    def run(self, graph_name: str, retry: Retry | None = None) -> RunInfo:
        """Run a graph: read its sources, or with ``retry`` send quarantined records again (cdp_core/retry.py)."""
        graph: SyncGraph = self.config.graphs[graph_name]
        run = RunInfo(id=uuid.uuid4().hex, graph=graph_name, started_at=utc_now())
        run.nodes = {name: NodeStats(kind=node.role) for name, node in graph.nodes.items()}
        if retry is not None:
            run.kind = RunKind.retry
        self.system.start_run(run)
        self.plugins.notify("cdp_run_started", run=run)
        execution = _Execution(self, graph, run) if retry is None else retry.execution(self, graph, run)
        try:
            error = execution.execute()
        except BaseException as exc:  # KeyboardInterrupt (a second Ctrl-C), SystemExit: never leave it "running"
            run.finished_at = utc_now()
            run.status = RunStatus.interrupted
            run.error = f"stopped mid-batch ({type(exc).__name__}); that batch was not committed"
            try:
                self.system.save_run(run)
            except Exception as save_error:  # noqa: BLE001 - the interruption is what to report
                log.error("run %s: could not record its end: %s", run.id, self.config.redact(describe_error(save_error)))
            raise
        run.finished_at = utc_now()
        if error is None:
            run.status = RunStatus.succeeded if execution.complete else RunStatus.interrupted
            self.system.save_run(run)
            self.plugins.notify("cdp_run_finished", run=run)
        else:
            run.status = RunStatus.failed
            run.error = describe_error(error, self.config.redact)
            self.system.save_run(run)
            self.plugins.notify("cdp_run_failed", run=run, error=error)
        return run

    def context(self, connector: str) -> ConnectorContext:
        return connector_context(self.config, connector, {"http": self.http, **self.services})


def connector_context(config: Config, connector: str, services: dict[str, Any]) -> ConnectorContext:
    """The context a connector's plugin instance is built with, in a run or outside one (a privacy
    command asking a destination to forget someone); an ``HttpFactory`` in ``services["http"]`` is
    bound to the connector (its rate limit, its secrets redacted)."""
    services = dict(services)
    if isinstance(services.get("http"), HttpFactory):
        services["http"] = services["http"].for_connector(connector, redactor=config.redact)
    return ConnectorContext(
        name=connector,
        store_url=config.store_url,
        base_dir=config.path.parent.resolve(),
        logger=logging.getLogger(f"cdp.connector.{connector}"),
        services=services,
        sections=config.sections,
    )


class _Execution:
    """The state of one run: the built plugin instances and the per-node counters."""

    def __init__(self, runner: Runner, graph: SyncGraph, run: RunInfo) -> None:
        self.runner = runner
        self.graph = graph
        self.run = run
        self.sources: dict[str, Source] = {}
        self.transforms: dict[str, Transform] = {}
        self.destinations: dict[str, Destination] = {}
        self.gates: dict[str, list[ExportGate]] = {}
        """The export gates of each destination node that serves a purpose (cdp_core/gates.py)."""
        self.screens: list[RecordScreen] = []
        """The run's record screens (cdp_core/screens.py); none when no plugin has anything to drop."""
        self.redact = runner.config.redact
        self.complete = False
        """Every source read to its end (not stopped on request)."""
        self._trait_maps: dict[str, TraitMap | None] = {}

    def execute(self) -> BaseException | None:
        first_error: BaseException | None = None
        try:
            self._build()
            self._open_destinations()
            complete = True
            for node in self.graph.sources():
                if self.runner.should_stop():
                    complete = False
                    break
                try:
                    complete = self._run_source(node) and complete
                except Exception as exc:  # noqa: BLE001 - other sources of the graph still run
                    message = describe_error(exc, self.redact)
                    log.error("run %s: source node %s failed: %s", self.run.id, node.name, message)
                    self.run.nodes[node.name].error = message
                    first_error = first_error or exc
            self.complete = complete
            if first_error is None and complete:
                for name, dest in self.destinations.items():
                    try:
                        dest.finish()
                    except Exception as exc:  # noqa: BLE001
                        self.run.nodes[name].error = describe_error(exc, self.redact)
                        first_error = first_error or exc
        except Exception as exc:  # noqa: BLE001 - building or opening failed: nothing ran
            first_error = first_error or exc
        finally:
            closables: list[tuple[str, Source | Destination | ExportGate | RecordScreen]] = [
                *self.destinations.items(),
                *self.sources.items(),
                *((name, gate) for name, gates in self.gates.items() for gate in gates),
                *((f"record screen {type(s).__name__}", s) for s in self.screens),
            ]
            for name, closable in closables:
                try:
                    closable.close()
                except Exception as exc:  # noqa: BLE001
                    log.error("run %s: closing %s failed: %s", self.run.id, name, describe_error(exc, self.redact))
                    first_error = first_error or exc
        return first_error

    def _build(self) -> None:
        config, registry = self.runner.config, self.runner.plugins.registry
        self._build_screens()
        for node in self.graph.nodes.values():
            if node.role == "source" and node.connector not in self.sources:
                connector = config.connectors[node.connector]
                cls = connector.roles["source"].cls
                self.sources[node.connector] = cls(connector.config, self.runner.context(node.connector))
            elif node.role == "transform":
                reg = registry.get("transform", node.ref)
                assert reg is not None, node.ref  # validated when the config was loaded
                self.transforms[node.name] = reg.cls(node.options)
            elif node.role == "destination":
                connector = config.connectors[node.ref]
                cls = connector.roles["destination"].cls
                self.destinations[node.name] = cls(connector.config, self.runner.context(node.ref), node.options)
                self._build_gates(node, cls)

    def _build_screens(self) -> None:
        """Ask the plugins for the run's record screens, before any node is built."""
        hook = self.runner.plugins.manager.hook.cdp_record_screen
        for screen in hook(config=self.runner.config, graph=self.graph.name):
            if screen is not None:
                self.screens.append(screen)

    def screen(self, node: str, records: list[Record]) -> list[Record]:
        """``records`` less what the record screens drop, counted as ``node``'s ``suppressed``."""
        if not self.screens or not records:
            return records
        kept = records
        for screen in self.screens:
            kept = screen.keep(kept)
            if not kept:
                break
        if len(kept) > len(records):
            raise RunFailed(f"a record screen kept {len(kept)} of {len(records)} records at {node!r}")
        self.run.nodes[node].suppressed += len(records) - len(kept)
        return kept

    def checkpoint(self, cursors: dict[str, Any], rejected: list[tuple[str, Rejected]], **more: Any) -> Checkpoint:
        """The checkpoint of one batch, screening its quarantine entries when the run has screens."""
        screens = self.screens
        return Checkpoint(
            self.graph.name,
            self.run.id,
            cursors,
            rejected,
            lease=self.runner.lease,
            redact=self.runner.config.redact,
            screen=(lambda rej: suppressed(screens, rej)) if screens else None,
            **more,
        )

    def _build_gates(self, node: Node, cls: type[Destination]) -> None:
        """Ask the plugins for the export gates of a destination node that serves a purpose."""
        purpose = served_purpose(node, cls)
        if purpose is None:
            return
        context = self.runner.context(node.ref)
        hook = self.runner.plugins.manager.hook.cdp_export_gate
        gates: list[ExportGate] = [
            g for g in hook(context=context, graph=self.graph.name, node=node.name, purpose=purpose) if g is not None
        ]
        self.gates[node.name] = gates
        if not gates and node.purpose is not None:
            raise RunFailed(
                f"destination node {node.name!r} serves purpose {purpose!r}, but no plugin checks it "
                "(no export gate; is the profiles plugin disabled?)"
            )
        if not gates:
            log.warning(
                "run %s: destination node %s serves purpose %r by default, but no plugin checks it",
                self.run.id, node.name, purpose,
            )

    def _open_destinations(self) -> None:
        """Open each destination and bring it back to its committed state (a file is cut to its
        committed length); the states they start from are committed before the first batch."""
        starts: dict[str, Any] = {}
        for name, dest in self.destinations.items():
            dest.open()
            committed = self.runner.system.cursor(self.graph.name, name)
            start = dest.resume(committed)
            if start is not None and start != committed:
                starts[name] = start
        if starts:
            self.runner.system.commit(Checkpoint(self.graph.name, self.run.id, starts, lease=self.runner.lease))

    def attach_traits(self, node: Node, records: list[Record]) -> None:
        """Hand the source node's stream's trait mapping to its profile records (one shared object)."""
        if node.name not in self._trait_maps:
            stream = self.sources[node.connector].stream(node.stream)
            self._trait_maps[node.name] = stream.traits if stream.kind is RecordKind.profile else None
        mapping = self._trait_maps[node.name]
        if mapping is not None:
            for record in records:
                if record.kind is RecordKind.profile:
                    record.trait_map = mapping

    def _run_source(self, node: Node) -> bool:
        """Read one source node to its end (True), or until a stop is requested (False)."""
        stream = self.sources[node.connector].stream(node.stream)
        cursor = self.runner.system.cursor(self.graph.name, node.name)
        pages = iter(stream.read(cursor))
        while True:
            with paused_gc():
                if not self._next_page(node, pages):
                    return True
            if self.runner.should_stop():
                log.info("run %s: stop requested; %s stopped after a committed page", self.run.id, node.name)
                return False

    def _next_page(self, node: Node, pages: Iterator[Page]) -> bool:
        """Read, push through and commit the source node's next page; False at the end of the stream."""
        stats = self.run.nodes[node.name]
        started = time.perf_counter()
        page = next(pages, None)
        stats.seconds += time.perf_counter() - started
        if page is None:
            return False
        records = self.screen(node.name, page.records)
        stats.records_out += len(records)
        stats.rejected += len(page.rejects)
        self.attach_traits(node, records)
        rejected: list[tuple[str, Rejected]] = [(node.name, r) for r in page.rejects]
        batches: dict[str, list[Record]] = {}
        self._push(node.name, records, batches, rejected)
        checkpoint = self.checkpoint({node.name: page.cursor}, rejected)
        self._deliver(batches, checkpoint)
        for where, rej in checkpoint.quarantined():
            self.runner.plugins.notify("cdp_record_rejected", run=self.run, node=where, rejected=rej)
        if self.runner.on_progress:
            self.runner.on_progress(self.run)
        return True

    def _push(
        self, origin: str, records: list[Record], batches: dict[str, list[Record]], rejected: list[tuple[str, Rejected]]
    ) -> None:
        children = self.graph.nodes[origin].children
        for i, child in enumerate(children):
            # Transforms may change records in place (it is much faster); on a
            # fan-out every branch but the last gets its own copy.
            branch = records if i == len(children) - 1 else [r.model_copy(deep=True) for r in records]
            self._enter(child, branch, batches, rejected)

    def _enter(
        self,
        name: str,
        records: list[Record],
        batches: dict[str, list[Record]],
        rejected: list[tuple[str, Rejected]],
        *,
        screen: bool = False,
    ) -> None:
        """Hand ``records`` to transform or destination node ``name`` (a destination's batch is written by _deliver).

        ``screen``: records that did not come from a screened source page (a retry's) are screened
        at a transform first; a destination's batch is always screened before its write.
        """
        node = self.graph.nodes[name]
        stats = self.run.nodes[name]
        stats.records_in += len(records)
        if node.role == "destination":
            batches.setdefault(name, []).extend(records)
            return
        if screen:
            records = self.screen(name, records)
        ctx = TransformContext(name)
        started = time.perf_counter()
        out = self.transforms[name].process(records, ctx)
        stats.seconds += time.perf_counter() - started
        stats.records_out += len(out)
        stats.rejected += len(ctx.rejected)
        rejected.extend((name, r) for r in ctx.rejected)
        if out:
            self._push(name, out, batches, rejected)

    def _deliver(self, batches: dict[str, list[Record]], checkpoint: Checkpoint) -> None:
        for name, entering in batches.items():
            batch = batches[name] = self.screen(name, entering)
            if not self.destinations[name].handles_deletions:
                kept = [r for r in batch if not r.deleted]
                if len(kept) != len(batch):
                    self.run.nodes[name].hold_back({SKIPPED_DELETION: len(batch) - len(kept)})
                    batch = batches[name] = kept
            accepts = self.destinations[name].accepts
            if accepts is not None:
                kept = [r for r in batch if r.kind in accepts]
                if len(kept) != len(batch):
                    for r in batch:
                        if r.kind not in accepts:
                            reason = f"destination {name!r} does not accept records of kind {str(r.kind)!r}"
                            checkpoint.rejected.append((name, Rejected(reason=reason, raw=r.raw(), key=r.key)))
                    self.run.nodes[name].rejected += len(batch) - len(kept)
                    batches[name] = kept
            for gate in self.gates.get(name, ()):
                if batches[name]:
                    before = len(batches[name])
                    batches[name], held = gate.check(batches[name])
                    if sum(held.values()) != before - len(batches[name]):
                        raise RunFailed(
                            f"the export gate of {name!r} ({type(gate).__name__}) kept {len(batches[name])} of "
                            f"{before} records but counted {sum(held.values())} held back"
                        )
                    self.run.nodes[name].hold_back(held)
        committer = next(
            (n for n in reversed(list(batches)) if batches[n] and self.destinations[n].commits_checkpoint), None
        )
        checkpoint.commit_by = committer
        order = [n for n in batches if n != committer] + ([committer] if committer else [])
        writing: list[tuple[str, int, int]] = []  # (node, batch size, rejects before) of the write under way

        def progress() -> dict[str, dict[str, Any]]:
            nodes = {name: dict(vars(stats)) for name, stats in self.run.nodes.items()}
            for name, size, before in writing:
                refused = len(checkpoint.rejected) - before
                nodes[name]["records_out"] += size - refused
                nodes[name]["rejected"] += refused
            for (name, message), count in checkpoint.warnings.items():
                counts = nodes[name]["warnings"] = dict(nodes[name]["warnings"])
                counts[message] = counts.get(message, 0) + count
            for name, count in checkpoint.suppressed.items():  # rejects dropped instead of quarantined
                nodes[name]["rejected"] -= count
                nodes[name]["suppressed"] += count
            return nodes

        checkpoint.progress = progress
        committed = False
        try:
            for name in order:
                batch = batches[name]
                if not batch:
                    continue
                stats = self.run.nodes[name]
                before = len(checkpoint.rejected)
                checkpoint.node = name
                writing[:] = [(name, len(batch), before)]
                started = time.perf_counter()
                self.destinations[name].write(batch, checkpoint)
                committed = name == committer
                writing.clear()
                stats.seconds += time.perf_counter() - started
                refused = len(checkpoint.rejected) - before
                stats.records_out += len(batch) - refused
                stats.rejected += refused
                self.runner.plugins.notify("cdp_batch_written", run=self.run, node=name, count=len(batch) - refused)
            if committer is not None and not checkpoint.committed:
                raise RunFailed(f"destination {committer!r} did not commit the checkpoint it was handed")
            if not checkpoint.committed:
                self.runner.system.commit(checkpoint)
                committed = True
        except BaseException:
            if not committed:
                # Destinations that wrote outside the store (files) undo their part of this batch.
                checkpoint.aborted = True
            raise
        for name, count in checkpoint.already_quarantined.items():
            self.run.nodes[name].already_quarantined += count
        for name, count in checkpoint.suppressed.items():
            self.run.nodes[name].rejected -= count
            self.run.nodes[name].suppressed += count
        for (name, message), count in checkpoint.warnings.items():
            counts = self.run.nodes[name].warnings
            counts[message] = counts.get(message, 0) + count
