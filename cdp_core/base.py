"""Base classes a plugin subclasses: sources and their streams, transforms, destinations.

The vocabulary follows dlt and Airbyte: a *source* offers named *streams*; a
stream reads *pages* of records from a *cursor* and reports the cursor to resume
from after each page. A *transform* maps a batch to a batch. A *destination*
writes a batch and is durable when ``write`` returns.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from cdp_core.forget import ForgetResult, ForgetSubject
from cdp_core.records import JsonValue, Record, RecordKind, Rejected
from cdp_core.traits import TraitMap

if TYPE_CHECKING:
    from cdp_core.store.checkpoint import Checkpoint


class PluginConfig(BaseModel):
    """Base for every plugin's config model.

    Unknown keys are errors (``extra="forbid"``): a typo in connectors.toml must
    never be silently ignored. The registry refuses config models that allow extras.
    """

    model_config = ConfigDict(extra="forbid")


class NoOptions(PluginConfig):
    """The config model of a plugin that takes no options."""


@dataclass
class ConnectorContext:
    """What the core hands a source or destination when it builds one.

    :param name: the connector's name in connectors.toml (``[connectors.NAME]``).
    :param store_url: the profile store's database URL (``[store] url``).
    :param base_dir: the folder of connectors.toml; relative paths in options
        resolve against it, wherever ``cdp`` was started.
    :param logger: a logger named for the connector.
    :param services: extra services the core offers (the HTTP client factory);
        keyed by name so new services never break old plugins.
    :param sections: the plugins' top-level sections of connectors.toml, by name,
        each validated by the model its plugin registered (``[identity]``...).
    """

    name: str
    store_url: str = "sqlite:///cdp.sqlite"
    base_dir: Path = field(default_factory=Path.cwd)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("cdp"))
    services: dict[str, Any] = field(default_factory=dict)
    sections: Mapping[str, BaseModel] = field(default_factory=dict)

    def resolve(self, path: str | Path) -> Path:
        """A path from the config, relative to the folder of connectors.toml."""
        return self.base_dir / Path(path).expanduser()


@dataclass
class Page:
    """One page read from a stream.

    :param records: the records of this page.
    :param cursor: the cursor to resume from after this page (JSON-safe), or
        ``None`` if the stream is not incremental.
    :param rejects: input the stream could not turn into records (a malformed
        line, a payload that fails the record model): quarantined, not lost.
    """

    records: list[Record]
    cursor: JsonValue = None
    rejects: list[Rejected] = field(default_factory=list)


class Stream(ABC):
    """A named, resumable sequence of records offered by a source.

    Subclasses set the class attributes (or instance attributes for streams whose
    shape depends on config) and implement :meth:`read`.
    """

    name: str
    kind: RecordKind = RecordKind.profile
    primary_key: tuple[str, ...] = ("id",)
    cursor_field: str | None = None
    identifier_types: tuple[str, ...] = ()
    """The identifier types its records may carry (``email``, ``hubspot_contact_id``...): what
    ``[identity]`` may name (the profile product checks it). Declare every type the stream emits."""
    traits: TraitMap | None = None
    """For a profile stream: which fields of its records become profile traits, under which names
    (cdp_core/traits.py). The runner hands it to every record the stream reads (``Record.trait_map``).
    None: every field is a trait. A vendor stream declares a sensible default, overridable in config."""
    records_of: str | None = None
    """The stream whose records this one delivers, when not its own: its records carry that stream's
    name (``CONNECTOR.customers``) so the store upserts or deletes the very rows that stream wrote (a
    webhook stream delivering the pull stream's records, a list of archived contacts delivering the
    tombstones of ``contacts``). None: its records carry its own name."""
    emits_deletions: bool = False
    """Whether its reads may yield tombstones (``Record.deleted``). The conformance suite checks a
    declared deletion stream, and fails a stream that yields tombstones without declaring it."""

    @abstractmethod
    def read(self, cursor: JsonValue) -> Iterator[Page]:
        """Yield pages starting after ``cursor`` (``None``: from the beginning).

        Each page's ``cursor`` must be enough to resume right after it: reading
        again from it never repeats a record of that page or earlier ones.
        """

    def parse(self, raw: JsonValue) -> Record | Rejected | None:
        """Read a payload this stream rejected (a ``Page.rejects`` entry's ``raw``) again, with today's options.

        ``cdp quarantine retry`` calls it for a record quarantined by a source node: return
        the record it is now, or a :class:`Rejected` with today's reason. May do I/O (a file
        source reads its current header). The default, ``None``, says this stream cannot:
        the retry then sends a payload that is a whole record (``Record.raw()``) on to the
        node's children as it is, and leaves any other payload in quarantine untouched.
        """
        return None


class Source(ABC):
    """A configured origin of records: a CRM account, a file folder, a survey tool."""

    config_model: ClassVar[type[PluginConfig]] = NoOptions

    def __init__(self, config: PluginConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    @abstractmethod
    def streams(self) -> Sequence[Stream]:
        """The streams this source offers. Must not do I/O: ``cdp validate`` calls it."""

    def stream(self, name: str) -> Stream:
        for stream in self.streams():
            if stream.name == name:
                return stream
        known = ", ".join(s.name for s in self.streams()) or "none"
        raise KeyError(f"no stream {name!r} (streams: {known})")

    def close(self) -> None:
        """Release connections; called once after the run."""


class TransformContext:
    """Collects what a transform rejects while it processes one batch."""

    def __init__(self, node: str, logger: logging.Logger | None = None) -> None:
        self.node = node
        self.logger = logger or logging.getLogger(f"cdp.transform.{node}")
        self.rejected: list[Rejected] = []

    def reject(self, record: Record, reason: str) -> None:
        """Send ``record`` to quarantine with ``reason``; the sync goes on."""
        self.rejected.append(Rejected(reason=reason, raw=record.raw(), key=record.key))


class Transform(ABC):
    """Batch in, batch out. Pure: no I/O except through the context it is given.

    To drop a record, leave it out of the result; to reject one (quarantine),
    call ``ctx.reject(record, reason)`` and leave it out.
    """

    config_model: ClassVar[type[PluginConfig]] = NoOptions

    def __init__(self, config: PluginConfig) -> None:
        self.config = config

    @abstractmethod
    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        """Return the records to pass on."""


class WriteMode(StrEnum):
    """How a destination treats a record delivered again with the same key."""

    append = "append"
    """Every delivery is written: a re-delivered record may appear twice."""
    upsert = "upsert"
    """Keyed by ``Record.key``: a re-delivered record replaces the earlier one."""


SKIPPED_DELETION = "a deletion: the destination does not handle deletions"
"""How a destination node counts the tombstones (``Record.deleted``) it was not given (held back)."""


class Destination(ABC):
    """Where records go: the profile store, a file, a vendor API.

    ``write`` returns only once the batch is durable. A record the destination
    cannot take goes to quarantine with ``checkpoint.reject(record, reason)``.
    A destination that keeps the sync state in its own database (the profile
    store) sets ``commits_checkpoint = True``: the runner then writes to it last
    and it calls ``checkpoint.write(connection)`` inside the transaction that
    writes the batch, so batch and cursor land together (exactly-once).
    """

    config_model: ClassVar[type[PluginConfig]] = NoOptions
    options_model: ClassVar[type[PluginConfig]] = NoOptions
    """Per-node options (``[syncs.G.nodes.N] options = {...}``)."""
    write_mode: ClassVar[WriteMode] = WriteMode.append
    accepts: ClassVar[frozenset[RecordKind] | None] = None
    """The record kinds it takes; ``None`` takes any."""
    handles_deletions: ClassVar[bool] = False
    """Whether ``write`` takes tombstones (``Record.deleted``). If not, the runner drops them before the
    write and counts them as held back on the node (``SKIPPED_DELETION``): never written, never quarantined."""
    commits_checkpoint: ClassVar[bool] = False
    purpose: ClassVar[str | None] = None
    """The purpose its exports serve by default (``"ads"``, ``"email"``); a graph's node may set
    another (``purpose = "..."``). A node that serves a purpose has every batch checked by the
    plugins' export gates before ``write`` (cdp_core/gates.py, docs/consent.md); None: none."""

    def __init__(
        self, config: PluginConfig, context: ConnectorContext, options: PluginConfig | None = None
    ) -> None:
        self.config = config
        self.context = context
        self.options = options if options is not None else self.options_model()

    def open(self) -> None:
        """Prepare for writing; called once before the first batch of a run."""

    def resume(self, state: JsonValue) -> JsonValue:
        """Called by the runner right after ``open()`` with the state this node last committed.

        For a destination whose output lives outside the store (a file): ``write``
        hands its position to the checkpoint (``checkpoint.keep(state)``), so it is
        committed with the cursor; here, at the start of the next run, the output is
        brought back to that state (a file cut to its committed length), undoing what
        a killed run wrote after its last commit. ``state`` is None when nothing was
        committed yet. Return the state to commit before the first batch (None: nothing).
        """
        return None

    @abstractmethod
    def write(self, batch: list[Record], checkpoint: Checkpoint) -> None:
        """Write ``batch`` durably; commit ``checkpoint`` with it if ``commits_checkpoint``."""

    supports_forget: ClassVar[bool] = False
    """Whether :meth:`forget` is implemented: erasing a person at the vendor (cdp_core/forget.py)."""

    def forget(self, subject: ForgetSubject) -> ForgetResult:
        """Erase the person ``subject`` describes at the vendor; called outside any run, after ``open()``.

        Return ``done`` when the vendor erased them or holds nothing of them, ``retry`` for a
        passing failure (it is asked again with backoff), ``failed`` when it refused for good.
        An exception counts as ``retry`` with its (redacted) text as the answer.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot forget a person (supports_forget is False)")

    def finish(self) -> None:
        """Called once when every source of the run read to its end without error, before close().

        Work that is only right on a complete picture belongs here: a destination
        that mirrors its input (an ad audience) sends its removals here, never
        after a partial run.
        """

    def close(self) -> None:
        """Flush and release; called once after the run, also when it failed."""
