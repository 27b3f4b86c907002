"""Putting ``cdp serve`` together from a loaded config: the sources and webhooks it serves, the committer, the worker."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette

from cdp_core.config import Config
from cdp_core.ingest.committer import GroupCommitter
from cdp_core.ingest.log import IngestEntry
from cdp_core.ingest.tracking_source import TYPE_NAME, TrackingApiConfig, message_records
from cdp_core.plugins import Plugins
from cdp_core.records import Record
from cdp_core.runner import Runner
from cdp_core.serve.app import KeyedSource, ServeState, build_app
from cdp_core.serve.continuous import ContinuousWorker
from cdp_core.serve.metrics import Metrics
from cdp_core.serve.ratelimit import TokenBucket
from cdp_core.screens import RecordScreen
from cdp_core.serve.screening import SERVE, ServeScreens
from cdp_core.store import SystemStore
from cdp_core.webhooks import Webhook

log = logging.getLogger("cdp.serve")


class ServeConfigError(Exception):
    """connectors.toml cannot be served as it is; ``problems`` lists why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def continuous_graphs(config: Config) -> list[str]:
    """The enabled graphs with ``continuous = true`` (also those left out for a missing secret)."""
    return sorted(
        name for name, raw in config.root.syncs.items() if raw.get("continuous") is True and raw.get("enabled", True) is not False
    )


@dataclass
class Serving:
    """What one ``cdp serve`` process runs: the app's state and the continuous worker."""

    state: ServeState
    worker: ContinuousWorker

    @property
    def notes(self) -> list[str]:
        """What the operator should know at the start: the webhooks that refuse every delivery, and why."""
        return [
            f"connectors.{name}: its webhook answers 401 to every request: {why}"
            for name, why in self.state.unverifiable.items()
        ]

    def app(self) -> Starlette:
        worker, state = self.worker, self.state

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            # What is alive now (modules, plugins, config: ~135,000 objects) stays alive for good:
            # moved out of the collector's reach, so a full collection walks only what requests made.
            # Without it those collections paused every request for 100-250 ms about once a second
            # under load (bench/serve.py: p99 of 100-message batches 255 ms, with it 65 ms).
            gc.collect()
            gc.freeze()
            state.committer.start()
            worker.start()
            try:
                yield
            finally:
                worker.close()  # after the batch being written
                state.committer.close()  # what is queued is committed
                if state.screens is not None:
                    state.screens.close()

        return build_app(state, lifespan=lifespan)


def build_serving(config: Config, plugins: Plugins, system: SystemStore, *, poll: float = 1.0) -> Serving:
    """The server of ``config``; :class:`ServeConfigError` when a source, webhook or graph it needs cannot be served."""
    problems: list[str] = []
    for name, raw in config.root.connectors.items():
        if raw.get("type") == TYPE_NAME and name in config.unavailable:
            problems.append(f"connectors.{name}: cannot serve it: {'; '.join(config.unavailable[name])}")
    graphs = continuous_graphs(config)
    for name in graphs:
        if name not in config.graphs:
            problems.append(f"syncs.{name}: continuous graph cannot run (a connector it uses is not available)")
    metrics = Metrics()
    committer = GroupCommitter(system.engine, observe=metrics.committed)
    runner = Runner(config, plugins, system)
    sources: list[KeyedSource] = []
    webhooks: dict[str, Webhook] = {}
    webhook_types = plugins.webhooks
    # A connector of a webhook type that cannot verify deliveries (a secret or another option not
    # set, e.g. its ${ENV} variable missing) is still served: every request gets 401, and the
    # operator is told why at the start (Serving.notes) and with each refused request (the log).
    unverifiable = {
        name: "; ".join(config.unavailable[name])
        for name, raw in config.root.connectors.items()
        if raw.get("type") in webhook_types and name in config.unavailable
    }
    for name, connector in sorted(config.connectors.items()):
        if connector.type == TYPE_NAME:
            assert isinstance(connector.config, TrackingApiConfig)
            limit = connector.config.rate_limit
            bucket = TokenBucket(limit.per_second, limit.capacity) if limit else None
            sources.append(KeyedSource(name, connector.config.write_key.get_secret_value(), bucket))
        if connector.type in webhook_types:
            hook = webhook_types[connector.type](connector.config, runner.context(name))
            if (missing := hook.unavailable()) is not None:
                unverifiable[name] = missing
            else:
                webhooks[name] = hook
    keys = [s.write_key for s in sources]
    if len(set(keys)) != len(keys):
        problems.append("two tracking_api connectors have the same write_key: each source needs its own")
    worker = ContinuousWorker(config, plugins, system, [g for g in graphs if g in config.graphs], poll=poll)
    problems += [f"syncs.{g}: continuous, but none of its sources reads the ingest log" for g in worker.without_log_sources()]
    if problems:
        worker.close()
        raise ServeConfigError(problems)
    tracking = {name: c.config for name, c in config.connectors.items() if isinstance(c.config, TrackingApiConfig)}

    def records_of(entry: IngestEntry) -> list[Record] | None:
        settings = tracking.get(entry.source)
        return None if settings is None else message_records(entry, settings, f"{entry.source}.messages")

    def load_screens() -> list[RecordScreen]:
        found = plugins.manager.hook.cdp_record_screen(config=config, graph=SERVE)
        return [screen for screen in found if screen is not None]

    state = ServeState(
        system.engine, committer, sources, webhooks, metrics, on_stored=worker.wake, unverifiable=dict(sorted(unverifiable.items())),
        screens=ServeScreens(load_screens), records_of=records_of, redact=config.redact,
    )
    return Serving(state, worker)
