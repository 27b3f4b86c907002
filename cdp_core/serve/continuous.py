"""Continuous graphs: ``[syncs.G] continuous = true`` runs G in ``cdp serve`` as messages arrive.

A worker thread waits for a wake-up (a request of this process stored something) or the
poll interval (another process may have), then runs each continuous graph that has news:
a source node reading the ingest log (an :class:`~cdp_core.ingest.IngestLogStream`) with
rows past its committed cursor. A run is an ordinary run under the graph's lease
(``run_guarded``): one process at a time runs a graph, ``cdp runs`` lists it, its cursor is
committed with each batch. A graph another process is running is left to it; the next poll
looks again. Graphs with nothing new do not run (no empty runs in the history).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from cdp_core.base import Source
from cdp_core.config import Config
from cdp_core.ingest.reader import IngestLogStream, log_cursor, read_rows
from cdp_core.plugins import Plugins
from cdp_core.runner import Runner
from cdp_core.scheduler.execute import run_guarded
from cdp_core.store import SystemStore
from cdp_core.store.leases import LeaseBusy, Leases

log = logging.getLogger("cdp.serve")


@dataclass
class _LogNode:
    node: str
    stream: IngestLogStream


class ContinuousWorker:
    """Runs the continuous graphs of ``config`` whenever the ingest log has news for them."""

    def __init__(
        self, config: Config, plugins: Plugins, system: SystemStore, graphs: list[str], *, poll: float = 1.0
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.system = system
        self.graphs = graphs
        self.poll = poll
        self.stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._sources: list[Source] = []
        self._nodes = {g: self._log_nodes(g) for g in graphs}
        self.leases = Leases(system.engine)

    def _log_nodes(self, graph: str) -> list[_LogNode]:
        """The source nodes of ``graph`` that read the ingest log."""
        runner = Runner(self.config, self.plugins, self.system)
        found = []
        for node in self.config.graphs[graph].sources():
            connector = self.config.connectors[node.connector]
            source = connector.roles["source"].cls(connector.config, runner.context(node.connector))
            self._sources.append(source)
            stream = source.stream(node.stream)
            if isinstance(stream, IngestLogStream):
                found.append(_LogNode(node.name, stream))
        return found

    def without_log_sources(self) -> list[str]:
        """Continuous graphs none of whose sources reads the ingest log: they would never run."""
        return [g for g, nodes in self._nodes.items() if not nodes]

    def start(self) -> None:
        if self.graphs and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cdp-continuous", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """Stop after the batch being written; wait for the thread."""
        self.stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for source in self._sources:
            source.close()

    def has_news(self, graph: str) -> bool:
        for item in self._nodes[graph]:
            cursor = log_cursor(self.system.cursor(graph, item.node))
            if read_rows(self.system.engine, item.stream.source, cursor, 1, item.stream.kinds):
                return True
        return False

    def run_once(self) -> list[str]:
        """Run every continuous graph that has news; the names of those that ran."""
        ran = []
        for graph in self.graphs:
            if self.stop.is_set():
                break
            try:
                if not self.has_news(graph):
                    continue
                outcome = run_guarded(self.config, self.plugins, self.system, graph, leases=self.leases, stop=self.stop)
            except LeaseBusy:
                continue  # another process runs it now; the next poll looks again
            except Exception:  # noqa: BLE001 - a failing graph must not stop the server or the other graphs
                log.exception("continuous graph %s failed", graph)
                continue
            ran.append(graph)
            run = outcome.run
            if run is not None:
                totals = run.totals()
                log.info("continuous graph %s: %s, %d read, %d written", graph, run.status, totals.read, totals.written)
        return ran

    def _run(self) -> None:
        while not self.stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            if self.stop.is_set():
                return
            self.run_once()
