"""In-memory plugins for tests: :class:`ListSource` and :class:`CollectingDestination`.

Both are registered by :data:`kit_plugin` (types ``list_source``, ``collect`` and
``collect_upsert``), so they can sit in a real connectors.toml and run through
the real runner, or be built directly in Python with :meth:`ListSource.of` and
``CollectingDestination()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from pydantic import Field

from cdp_core import hookimpl
from cdp_core.base import ConnectorContext, Destination, Page, PluginConfig, Source, Stream, WriteMode
from cdp_core.plugins import Register
from cdp_core.records import JsonValue, Record, RecordKind, Rejected
from cdp_core.store.checkpoint import Checkpoint

COLLECTOR_SERVICE = "cdp.testing.collector"
"""The ``ConnectorContext.services`` key under which a :class:`Collector` is found."""

KIT_PLUGIN_NAME = "cdp.testing"


# -- ListSource -----------------------------------------------------------------------------


class ListStreamConfig(PluginConfig):
    """One in-memory stream: its records as plain dicts and how to turn them into records."""

    records: list[dict[str, Any]] = Field(default_factory=list, description="the rows, as JSON objects")
    kind: RecordKind = RecordKind.profile
    key_field: str = Field(default="id", description="the field holding the record key")
    identifiers: dict[str, str] = Field(default_factory=dict, description="identifier type -> field")
    timestamp_field: str | None = Field(default=None, description="the field holding when it happened")
    incremental: bool = Field(
        default=True,
        description="true: the final cursor is the record count (a new read returns nothing); "
        "false: the final cursor is None (every run reads everything again)",
    )


class ListSourceConfig(PluginConfig):
    """Config of ``list_source``."""

    streams: dict[str, ListStreamConfig] = Field(min_length=1)
    page_size: int = Field(default=100, ge=1)
    fail_after_pages: int | None = Field(
        default=None, ge=0, description="raise RuntimeError after yielding this many pages of one read"
    )


class ListStream(Stream):
    """A stream over a list of dicts. The cursor is the index of the next record to read."""

    def __init__(self, name: str, qualified: str, config: ListStreamConfig, page_size: int, fail_after: int | None):
        self.name = name
        self.qualified = qualified
        self.config = config
        self.page_size = page_size
        self.fail_after = fail_after
        self.kind = config.kind
        self.primary_key = (config.key_field,)
        # Not a data field: the position in the list. None marks a full-refresh stream.
        self.cursor_field = "#index" if config.incremental else None

    def read(self, cursor: JsonValue) -> Iterator[Page]:
        if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0):
            raise ValueError(f"{self.qualified}: cursor must be None or a record index, got {cursor!r}")
        rows = self.config.records
        start = cursor or 0
        final: int | None = len(rows) if self.config.incremental else None
        if start >= len(rows):
            yield Page([], cursor=final)
            return
        for pages, begin in enumerate(range(start, len(rows), self.page_size)):
            if self.fail_after is not None and pages >= self.fail_after:
                raise RuntimeError(f"{self.qualified}: failing after {pages} page(s) as configured")
            end = min(begin + self.page_size, len(rows))
            records, rejects = self._convert(rows[begin:end], begin)
            yield Page(records, cursor=end if end < len(rows) else final, rejects=rejects)

    def _convert(self, rows: Sequence[dict[str, Any]], first_index: int) -> tuple[list[Record], list[Rejected]]:
        config = self.config
        records: list[Record] = []
        rejects: list[Rejected] = []
        for index, row in enumerate(rows, start=first_index):
            key = row.get(config.key_field)
            if key is None or key == "":
                rejects.append(Rejected(reason=f"record {index}: missing key field {config.key_field!r}", raw=row))
                continue
            identifiers = {t: str(row[f]) for t, f in config.identifiers.items() if row.get(f) not in (None, "")}
            records.append(
                Record(
                    stream=self.qualified,
                    kind=config.kind,
                    key=str(key),
                    data=dict(row),  # a copy: transforms may change records in place
                    identifiers=identifiers,
                    occurred_at=row.get(config.timestamp_field) if config.timestamp_field else None,
                )
            )
        return records, rejects


class ListSource(Source):
    """A source of in-memory streams, paged by ``page_size``; resumable from any page."""

    config_model = ListSourceConfig

    def __init__(self, config: PluginConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.closed = False

    @classmethod
    def of(
        cls,
        records: Iterable[dict[str, Any]],
        *,
        stream: str = "items",
        name: str = "list",
        page_size: int = 100,
        kind: RecordKind = RecordKind.profile,
        key_field: str = "id",
        identifiers: dict[str, str] | None = None,
        incremental: bool = True,
        context: ConnectorContext | None = None,
    ) -> ListSource:
        """Build a one-stream source in Python: ``ListSource.of([{"id": 1}], page_size=2)``."""
        stream_config = ListStreamConfig(
            records=list(records),
            kind=kind,
            key_field=key_field,
            identifiers=identifiers or {},
            incremental=incremental,
        )
        config = ListSourceConfig(streams={stream: stream_config}, page_size=page_size)
        return cls(config, context or ConnectorContext(name=name))

    def streams(self) -> Sequence[Stream]:
        config: ListSourceConfig = self.config  # type: ignore[assignment]
        return [
            ListStream(name, f"{self.context.name}.{name}", cfg, config.page_size, config.fail_after_pages)
            for name, cfg in config.streams.items()
        ]

    def close(self) -> None:
        self.closed = True


# -- CollectingDestination ------------------------------------------------------------------


class CollectConfig(PluginConfig):
    """Config of ``collect`` / ``collect_upsert``."""

    fail_after_batches: int | None = Field(
        default=None, ge=0, description="raise RuntimeError on a write once this many batches were written"
    )


class CollectingDestination(Destination):
    """Keeps every written batch in memory (append mode: ``.records`` lists every delivery).

    When the context's services hold a :class:`Collector` (``run_graph(...,
    collector=...)``), the instance signs up there, so a test can read what a
    destination built by the runner received.
    """

    config_model = CollectConfig
    write_mode = WriteMode.append

    def __init__(
        self,
        config: PluginConfig | None = None,
        context: ConnectorContext | None = None,
        options: PluginConfig | None = None,
    ) -> None:
        super().__init__(config or CollectConfig(), context or ConnectorContext(name="collect"), options)
        self.batches: list[list[Record]] = []
        self.checkpoints: list[Checkpoint | None] = []
        self.opened = False
        self.closed = False
        collector = self.context.services.get(COLLECTOR_SERVICE)
        if isinstance(collector, Collector):
            collector.add(self)

    def open(self) -> None:
        self.opened = True

    def write(self, batch: list[Record], checkpoint: Checkpoint | None = None) -> None:
        limit = self.config.fail_after_batches  # type: ignore[attr-defined]
        if limit is not None and len(self.batches) >= limit:
            raise RuntimeError(f"{self.context.name}: failing after {limit} batch(es) as configured")
        self.batches.append([r.model_copy(deep=True) for r in batch])
        self.checkpoints.append(checkpoint)

    def close(self) -> None:
        self.closed = True

    @property
    def records(self) -> list[Record]:
        """Every record written, in order (upsert mode: the latest per key, in first-seen order)."""
        return merge_batches(self.batches, self.write_mode)

    @property
    def keys(self) -> list[str]:
        return [r.key for r in self.records]


class UpsertCollectingDestination(CollectingDestination):
    """Like :class:`CollectingDestination`, keyed by ``Record.key``: a re-delivery replaces."""

    write_mode = WriteMode.upsert


def merge_batches(batches: Iterable[list[Record]], mode: WriteMode) -> list[Record]:
    """The records a destination of ``mode`` holds after writing ``batches``."""
    if mode is WriteMode.append:
        return [r for batch in batches for r in batch]
    latest: dict[str, Record] = {}
    for batch in batches:
        for record in batch:
            latest[record.key] = record
    return list(latest.values())


class Collector:
    """Gathers the :class:`CollectingDestination` instances a runner builds, by connector name.

    One collector may serve several runs (a failed run and its resumption): what
    a connector holds is everything its instances were sent across those runs.
    """

    def __init__(self) -> None:
        self.destinations: dict[str, list[CollectingDestination]] = {}

    def add(self, destination: CollectingDestination) -> None:
        self.destinations.setdefault(destination.context.name, []).append(destination)

    def batches(self, connector: str) -> list[list[Record]]:
        return [batch for dest in self.destinations.get(connector, []) for batch in dest.batches]

    def records(self, connector: str) -> list[Record]:
        """What the connector holds (honouring its write mode) across every run."""
        instances = self.destinations.get(connector, [])
        mode = instances[0].write_mode if instances else WriteMode.append
        return merge_batches(self.batches(connector), mode)

    def keys(self, connector: str) -> list[str]:
        return [r.key for r in self.records(connector)]


# -- the plugin -----------------------------------------------------------------------------


class KitPlugin:
    """Registers the kit's types: source ``list_source``, destinations ``collect`` and ``collect_upsert``."""

    @hookimpl
    def cdp_register_sources(self, register: Register) -> None:
        register("list_source", ListSource)

    @hookimpl
    def cdp_register_destinations(self, register: Register) -> None:
        register("collect", CollectingDestination)
        register("collect_upsert", UpsertCollectingDestination)

    def __repr__(self) -> str:
        return "<cdp.testing kit plugin>"


kit_plugin = KitPlugin()
"""Pass to ``register_plugin(kit_plugin)`` (or ``load_plugins(extra=[("cdp.testing", kit_plugin)])``)."""
