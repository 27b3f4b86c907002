"""Conformance suites: base test classes a plugin's own tests subclass.

Subclass one in a module pytest collects, name the subclass ``Test...``, set the
class attributes, and every inherited ``test_*`` runs against your plugin::

    pytest_plugins = ["cdp_core.testing"]          # in conftest.py

    class TestShopSource(SourceConformance):
        plugin = shop_plugin                        # the module with @hookimpl functions
        type_name = "shop"
        config = {"domain": "acme.example", "token": "t"}
        stream = "customers"

        def setup_source(self, respx_mock, tmp_path):
            respx_mock.get("https://acme.example/customers").respond(json=...)

The suites use the kit's fixtures (``register_plugin``, ``cdp_respx``), so the
test suite must enable ``cdp_core.testing``. See docs/testing.md.
"""

from __future__ import annotations

import builtins
import copy
import io
import json
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from pydantic import ValidationError

from cdp_core.base import (
    ConnectorContext,
    Destination,
    Page,
    PluginConfig,
    Source,
    Stream,
    Transform,
    TransformContext,
    WriteMode,
)
from cdp_core.plugins import Plugins, Role
from cdp_core.records import Record, RecordKind, Rejected
from cdp_core.store import Checkpoint, SystemStore
from cdp_core.testing.changing_pages import ChangingPages
from cdp_core.testing.deletions import DeclaredDeletions
from cdp_core.testing.forget_conformance import ForgetConformance
from cdp_core.testing.helpers import make_context, make_records, plugin_name, read_keys, roundtrip

if TYPE_CHECKING:
    import respx

__all__ = ["DestinationConformance", "ForgetConformance", "SourceConformance", "TransformConformance"]

UNKNOWN_KEY = "__cdp_conformance_unknown_key__"


def check_config_model(model: object, what: str) -> None:
    """Assert ``model`` subclasses PluginConfig and refuses unknown keys."""
    assert isinstance(model, type) and issubclass(model, PluginConfig), f"{what} must subclass cdp_core.PluginConfig"
    assert model.model_config.get("extra") == "forbid", f"{what} must forbid unknown keys (extra='forbid')"


class _Conformance:
    """What every suite shares: the plugin, its registration and its config model."""

    plugin: object
    """The plugin object: a module or an instance with ``@cdp_core.hookimpl`` functions."""
    plugin_name: ClassVar[str | None] = None
    """The name to register it under; default the module name."""
    type_name: ClassVar[str]
    """The type name the plugin registers the class under."""
    role: ClassVar[Role]

    @pytest.fixture
    def conformance_plugins(self, register_plugin: Callable[..., Plugins]) -> Plugins:
        """A fresh manager with the builtins and ``plugin``."""
        return register_plugin(self.plugin, self.plugin_name)

    @pytest.fixture
    def plugin_class(self, conformance_plugins: Plugins) -> type:
        """The class registered under ``type_name``; fails the test if there is none."""
        reg = conformance_plugins.registry.get(self.role, self.type_name)
        if reg is None:
            pytest.fail(self._not_registered(conformance_plugins), pytrace=False)
        return reg.cls

    def _registered_name(self, plugins: Plugins) -> str:
        return plugins.manager.get_name(self.plugin) or self.plugin_name or plugin_name(self.plugin)

    def _not_registered(self, plugins: Plugins) -> str:
        name = self._registered_name(plugins)
        info = plugins.info.get(name)
        if info is not None and info.status != "ok":
            return f"plugin {name!r} is {info.status}: {info.error}"
        conflict = plugins.registry.conflict_message(self.role, self.type_name)
        if conflict:
            return conflict
        known = ", ".join(plugins.registry.names(self.role)) or "none"
        return f"no {self.role} type {self.type_name!r} is registered (known {self.role}s: {known})"

    def test_registered(self, conformance_plugins: Plugins) -> None:
        """The plugin loads cleanly and registers ``type_name`` itself."""
        name = self._registered_name(conformance_plugins)
        reg = conformance_plugins.registry.get(self.role, self.type_name)
        assert reg is not None, self._not_registered(conformance_plugins)
        info = conformance_plugins.info[name]
        assert info.status == "ok", f"plugin {name!r} is {info.status}: {info.error}"
        assert reg.plugin == name, f"{self.role} {self.type_name!r} is registered by {reg.plugin!r}, not by {name!r}"

    def test_config_model(self, plugin_class: type) -> None:
        """``config_model`` subclasses PluginConfig and refuses unknown keys."""
        model = plugin_class.config_model  # type: ignore[attr-defined]
        check_config_model(model, f"{plugin_class.__name__}.config_model")
        with pytest.raises(ValidationError):
            model.model_validate({**self._config_dict(), UNKNOWN_KEY: 1})

    def test_config_validates(self, plugin_class: type) -> None:
        """The configured options are valid for the config model."""
        plugin_class.config_model.model_validate(self._config_dict())  # type: ignore[attr-defined]

    def _config_dict(self) -> dict[str, Any]:
        return dict(getattr(self, "config", {}))


# -- sources --------------------------------------------------------------------------------


@contextmanager
def no_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse ``open()`` and socket connections inside the block; yields the attempts made."""
    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            attempt = f"{what}({', '.join(repr(a) for a in args[:1])})"
            attempts.append(attempt)
            raise AssertionError(f"I/O is not allowed here: {attempt}")

        return blocked

    with monkeypatch.context() as patch:
        patch.setattr(builtins, "open", refuse("open"))
        patch.setattr(io, "open", refuse("open"))
        patch.setattr(socket.socket, "connect", refuse("socket.connect"))
        patch.setattr(socket, "create_connection", refuse("socket.create_connection"))
        yield attempts


def identifiers_problem(record: Record) -> str | None:
    """What is wrong with a record's identifiers, or None: each value a non-empty text without surrounding
    blanks; several values of a type a list without repeats (emails compared case-insensitively)."""
    for type_name, value in record.identifiers.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list):
            return f"identifiers.{type_name}: {value!r} is neither a text nor a list of texts"
        for item in values:
            if not isinstance(item, str) or not item.strip():
                return f"identifiers.{type_name}: {item!r} is no value (an empty text, or not a text)"
            if item != item.strip():
                return f"identifiers.{type_name}: {item!r} has blanks around it"
        folded = [v.casefold() if type_name == "email" else v for v in values]
        if len(set(folded)) != len(folded):
            return f"identifiers.{type_name}: {values!r} repeats a value"
    return None


class SourceConformance(ChangingPages, DeclaredDeletions, _Conformance):
    """The contract of a source (base.Source / base.Stream), tested on one stream.

    Set ``plugin``, ``type_name``, ``config`` and ``stream``; override
    :meth:`setup_source` to write fixture files or mock HTTP with respx. The
    full read must give at least ``min_pages`` pages with records (lower a page
    size in ``config`` if needed) so resuming is tested between pages.
    """

    role: ClassVar[Role] = "source"
    config: ClassVar[dict[str, Any]]
    """The connector's options (``[connectors.X]`` without ``type``)."""
    stream: ClassVar[str]
    """The stream under test."""
    connector_name: ClassVar[str] = "conformance"
    empty_config: ClassVar[dict[str, Any] | None] = None
    """Options of a source with no records (or override :meth:`setup_empty`); unset: the empty test fails and says so."""
    min_pages: ClassVar[int] = 2
    resumable: ClassVar[bool] = True
    """False for a stream that cannot resume mid-read (its page cursors are None)."""

    # -- hooks an integrator overrides ---------------------------------------------------
    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        """Prepare what ``config`` reads: write files under ``tmp_path``, add respx routes."""

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        """Prepare an empty source, read with ``empty_config`` (default ``config``)."""

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str] | None:
        """Add new records after a full read; return their keys (None fails the test: it is required).

        The suite then reads from the final cursor and expects exactly these keys.
        """
        return None

    def make_context(self, tmp_path: Path) -> ConnectorContext:
        """The context the source is built with (base_dir ``tmp_path``, the kit's store URL)."""
        return make_context(tmp_path, self.connector_name)

    # -- fixtures ------------------------------------------------------------------------
    @pytest.fixture
    def source_env(self, cdp_respx: respx.Router, tmp_path: Path) -> respx.Router:
        """Runs :meth:`setup_source`; yields the active respx router."""
        self.setup_source(cdp_respx, tmp_path)
        return cdp_respx

    @pytest.fixture
    def build_source(self, plugin_class: type, tmp_path: Path) -> Iterator[Callable[..., Source]]:
        """``build_source(config=None)``: a new source instance (closed after the test)."""
        built: list[Source] = []

        def build(config: dict[str, Any] | None = None) -> Source:
            options = plugin_class.config_model.model_validate(self.config if config is None else config)  # type: ignore[attr-defined]
            source = plugin_class(options, self.make_context(tmp_path))
            assert isinstance(source, Source), f"{plugin_class.__name__} is not a cdp_core.Source"
            built.append(source)
            return source

        yield build
        for source in built:
            source.close()

    @pytest.fixture
    def full_read(self, source_env: respx.Router, build_source: Callable[..., Source]) -> list[Page]:
        """Every page of a read from the beginning (cursor None), by a fresh source."""
        return list(build_source().stream(self.stream).read(None))

    def _stream(self, build_source: Callable[..., Source]) -> Stream:
        return build_source().stream(self.stream)

    # -- tests ---------------------------------------------------------------------------
    def test_streams_do_no_io(
        self,
        source_env: respx.Router,
        plugin_class: type,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Building the source and listing its streams opens no file and calls no network."""
        options = plugin_class.config_model.model_validate(self.config)  # type: ignore[attr-defined]
        context = self.make_context(tmp_path)
        calls_before = len(source_env.calls)
        with no_io(monkeypatch) as attempts:
            source = plugin_class(options, context)
            streams = list(source.streams())
        assert not attempts, f"streams() did I/O: {attempts}"
        assert len(source_env.calls) == calls_before, "streams() made HTTP requests"
        names = [s.name for s in streams]
        assert self.stream in names, f"stream {self.stream!r} not offered; streams: {names}"
        assert len(set(names)) == len(names), f"stream names repeat: {names}"
        for stream in streams:
            assert isinstance(stream, Stream), f"{stream!r} is not a cdp_core.Stream"
            assert isinstance(stream.kind, RecordKind), f"stream {stream.name!r}: kind {stream.kind!r} is no RecordKind"

    def test_full_read(self, full_read: list[Page], build_source: Callable[..., Source]) -> None:
        """A read from the start yields Pages of Records with stream, kind and key set, and JSON-safe cursors."""
        stream = self._stream(build_source)
        named = stream.records_of or self.stream  # a stream delivering another's records carries its name
        assert full_read, "read(None) yielded no page at all"
        for number, page in enumerate(full_read):
            assert isinstance(page, Page), f"page {number} is {type(page).__name__}, not a cdp_core.Page"
            try:
                json.dumps(page.cursor)
            except (TypeError, ValueError) as exc:
                pytest.fail(f"page {number}: cursor {page.cursor!r} is not JSON-safe: {exc}")
            for record in page.records:
                assert isinstance(record, Record), f"page {number}: {record!r} is not a cdp_core.Record"
                assert record.stream in (named, f"{self.connector_name}.{named}"), (
                    f"record {record.key!r}: stream {record.stream!r}, expected "
                    f"{self.connector_name}.{named!r} (CONNECTOR.STREAM)"
                )
                assert record.kind == stream.kind, (
                    f"record {record.key!r}: kind {record.kind} but the stream says {stream.kind}"
                )
                assert isinstance(record.key, str) and record.key.strip(), f"page {number}: a record has an empty key"
                problem = identifiers_problem(record)
                assert problem is None, f"page {number}: record {record.key!r}: {problem}"
            for reject in page.rejects:
                assert isinstance(reject, Rejected) and reject.reason, (
                    f"page {number}: reject without reason: {reject!r}"
                )
        with_records = sum(1 for p in full_read if p.records)
        assert with_records >= self.min_pages, (
            f"the full read gave {with_records} page(s) with records; the suite needs at least {self.min_pages} "
            "to test resuming (lower the page size in config, add records, or set min_pages)"
        )

    def test_keys_unique(self, full_read: list[Page]) -> None:
        """No key appears twice in one read."""
        counts = Counter(r.key for page in full_read for r in page.records)
        repeated = sorted(k for k, n in counts.items() if n > 1)
        assert not repeated, f"keys read more than once: {repeated}"

    def test_resume_after_every_page(self, full_read: list[Page], build_source: Callable[..., Source]) -> None:
        """Reading from the cursor saved after page k yields exactly the records after page k."""
        if not self.resumable:
            # It declares it cannot resume mid-read: then it must not hand out cursors that pretend to.
            early = [k for k, page in enumerate(full_read[:-1]) if page.cursor is not None]
            assert not early, (
                f"resumable = False, yet pages {early} carry a cursor the runner would commit and resume from"
            )
            return
        for k, page in enumerate(full_read[:-1]):
            assert page.cursor is not None, (
                f"page {k} has cursor None: a stream must be resumable after every page (or set resumable = False)"
            )
            expected = Counter(r.key for later in full_read[k + 1 :] for r in later.records)
            keys, _ = read_keys(self._stream(build_source), roundtrip(page.cursor))
            actual = Counter(keys)
            repeated, lost = actual - expected, expected - actual
            assert not repeated and not lost, (
                f"resuming after page {k} (cursor {page.cursor!r}): "
                f"repeated or unexpected {sorted(repeated.elements())}, lost {sorted(lost.elements())}"
            )

    def test_reread_from_final_cursor(self, full_read: list[Page], build_source: Callable[..., Source]) -> None:
        """An incremental stream read again from its final cursor repeats nothing."""
        stream = self._stream(build_source)
        final = full_read[-1].cursor
        if final is None:
            assert stream.cursor_field is None, (
                f"incremental stream (cursor_field {stream.cursor_field!r}) ended with cursor None: "
                "the next run would read everything again"
            )
            # A full-refresh stream reads everything again on the next run: check that it really does.
            all_keys = Counter(r.key for page in full_read for r in page.records)
            keys, _ = read_keys(stream, None)
            assert Counter(keys) == all_keys, "a full-refresh stream read again from the start gave other records"
            return
        seen = {r.key for page in full_read for r in page.records}
        keys, _ = read_keys(stream, roundtrip(final))
        again = sorted(k for k in keys if k in seen)
        assert not again, f"read again from the final cursor {final!r}, these records came back: {again}"

    def test_new_records_after_final_cursor(
        self, full_read: list[Page], build_source: Callable[..., Source], source_env: respx.Router, tmp_path: Path
    ) -> None:
        """After :meth:`add_more`, a read from the final cursor yields exactly the new records."""
        final = full_read[-1].cursor
        added = self.add_more(source_env, tmp_path)
        assert added is not None, (
            "implement add_more(source_env, tmp_path): add records to the source (a line to the file, a page to "
            "the mocked API) and return their keys; it proves that the next run picks up exactly the new records"
        )
        keys, _ = read_keys(self._stream(build_source), roundtrip(final))
        expected, actual = Counter(added), Counter(keys)
        if final is None:  # a full-refresh stream: the next run reads the old records and the new ones
            expected += Counter(r.key for page in full_read for r in page.records)
        assert actual == expected, (
            f"after add_more(), read from cursor {final!r}: "
            f"unexpected {sorted((actual - expected).elements())}, missing {sorted((expected - actual).elements())}"
        )

    def test_empty_source(self, cdp_respx: respx.Router, tmp_path: Path, build_source: Callable[..., Source]) -> None:
        """A source with nothing to read ends cleanly with no records."""
        overridden = type(self).setup_empty is not SourceConformance.setup_empty
        assert self.empty_config is not None or overridden, (
            "set empty_config or override setup_empty(): every source must end cleanly when there is nothing to read"
        )
        self.setup_empty(cdp_respx, tmp_path)
        pages = list(build_source(self.empty_config).stream(self.stream).read(None))
        records = [r.key for p in pages for r in p.records]
        rejects = [r.reason for p in pages for r in p.rejects]
        assert not records, f"an empty source yielded records: {records}"
        assert not rejects, f"an empty source yielded rejects: {rejects}"
        for page in pages:
            json.dumps(page.cursor)


# -- transforms -----------------------------------------------------------------------------


class TransformConformance(_Conformance):
    """The contract of a transform (base.Transform): pure, deterministic, batch in / batch out.

    Set ``plugin``, ``type_name``, ``options`` and ``sample_records`` (records the
    transform passes and, ideally, some it rejects).
    """

    role: ClassVar[Role] = "transform"
    options: ClassVar[dict[str, Any]] = {}
    """The node's options (``[syncs.G.nodes.N] options = {...}``)."""
    sample_records: ClassVar[list[Record]] = make_records(3)

    def _config_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def _process(self, plugin_class: type, batch: list[Record]) -> tuple[Any, TransformContext]:
        options = plugin_class.config_model.model_validate(self.options)  # type: ignore[attr-defined]
        transform = plugin_class(options)
        assert isinstance(transform, Transform), f"{plugin_class.__name__} is not a cdp_core.Transform"
        ctx = TransformContext("conformance")
        return transform.process(copy.deepcopy(batch), ctx), ctx

    def test_sample_records(self) -> None:
        """The suite has records to work on."""
        assert self.sample_records, "set sample_records: the suite needs records to process"
        assert all(isinstance(r, Record) for r in self.sample_records), "sample_records must be cdp_core.Record"

    def test_empty_batch(self, plugin_class: type) -> None:
        """Processing an empty batch returns [] and rejects nothing."""
        out, ctx = self._process(plugin_class, [])
        assert out == [], f"an empty batch gave {out!r}"
        assert not ctx.rejected, f"an empty batch rejected {ctx.rejected!r}"

    def test_returns_records(self, plugin_class: type) -> None:
        """The result is a list of Records with non-empty keys."""
        out, _ = self._process(plugin_class, self.sample_records)
        assert isinstance(out, list), f"process() returned {type(out).__name__}, not a list"
        for item in out:
            assert isinstance(item, Record), f"process() returned {item!r}, not a cdp_core.Record"
            assert item.key, "process() returned a record with an empty key"

    def test_rejects_carry_a_reason(self, plugin_class: type) -> None:
        """Every rejected record has a reason and is one of the input records."""
        _, ctx = self._process(plugin_class, self.sample_records)
        keys = {r.key for r in self.sample_records}
        for rejected in ctx.rejected:
            assert isinstance(rejected, Rejected), f"rejected {rejected!r} is not a cdp_core.Rejected"
            assert rejected.reason and rejected.reason.strip(), f"record {rejected.key!r} rejected without a reason"
            assert rejected.key in keys, f"rejected key {rejected.key!r} is not an input record's key"

    def test_deterministic(self, plugin_class: type) -> None:
        """The same batch gives the same output and rejections, every time."""
        first, ctx1 = self._process(plugin_class, self.sample_records)
        second, ctx2 = self._process(plugin_class, self.sample_records)
        assert _dumps(first) == _dumps(second), "two runs gave different output"
        assert [r.model_dump() for r in ctx1.rejected] == [r.model_dump() for r in ctx2.rejected], (
            "two runs rejected differently"
        )


def _dumps(items: Any) -> list[Any]:
    return [item.model_dump() if isinstance(item, Record) else item for item in items]


# -- destinations ---------------------------------------------------------------------------


class DestinationConformance(_Conformance):
    """The contract of a destination (base.Destination).

    Set ``plugin``, ``type_name``, ``config`` (and ``options``, ``sample_records``);
    override :meth:`read_back` so the suite can check what was written and the
    declared ``write_mode``.
    """

    role: ClassVar[Role] = "destination"
    config: ClassVar[dict[str, Any]] = {}
    options: ClassVar[dict[str, Any]] = {}
    """Per-node options for ``options_model``."""
    connector_name: ClassVar[str] = "conformance"
    sample_records: ClassVar[list[Record]] = make_records(3)
    """Records with distinct keys, of kinds the destination accepts."""

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str] | None:
        """The keys the destination now holds, one per stored record (None: not checked)."""
        return None

    def make_context(self, tmp_path: Path) -> ConnectorContext:
        return make_context(tmp_path, self.connector_name)

    @pytest.fixture
    def build_destination(self, plugin_class: type, tmp_path: Path) -> Callable[[], Destination]:
        def build() -> Destination:
            config = plugin_class.config_model.model_validate(self.config)  # type: ignore[attr-defined]
            options = plugin_class.options_model.model_validate(self.options)  # type: ignore[attr-defined]
            destination = plugin_class(config, self.make_context(tmp_path), options)
            assert isinstance(destination, Destination), f"{plugin_class.__name__} is not a cdp_core.Destination"
            return destination

        return build

    def _batch(self) -> list[Record]:
        return copy.deepcopy(self.sample_records)

    def _checkpoint(self, commit: bool) -> Checkpoint:
        """A checkpoint as the runner hands it: owned by this node only if it commits checkpoints."""
        checkpoint = Checkpoint("conformance", "run-1", {"conformance.source": {"position": 3}})
        checkpoint.node = "conformance.node"  # type: ignore[attr-defined, unused-ignore]
        checkpoint.commit_by = "conformance.node" if commit else None  # type: ignore[attr-defined, unused-ignore]
        return checkpoint

    def _write(self, destination: Destination, batch: list[Record]) -> list[str]:
        """Write ``batch`` with a fresh checkpoint; return the keys it should now hold (minus those it rejected)."""
        checkpoint = self._checkpoint(commit=destination.commits_checkpoint)
        destination.write(batch, checkpoint)
        keys = [r.key for r in batch]
        refused: list[str] = []
        for _node, rejected in checkpoint.rejected:
            assert rejected.reason and rejected.reason.strip(), f"record {rejected.key!r} rejected without a reason"
            assert rejected.key in keys, f"rejected key {rejected.key!r} is not in the batch written"
            refused.append(str(rejected.key))
        if destination.commits_checkpoint:
            assert checkpoint.committed, "commits_checkpoint is True but write() did not commit the checkpoint"
        else:
            assert not checkpoint.committed, "commits_checkpoint is False but write() committed the checkpoint"
        return list((Counter(keys) - Counter(refused)).elements())

    def _check_read_back(self, destination: Destination, tmp_path: Path, expected: list[str], what: str) -> None:
        held = self.read_back(destination, tmp_path)
        if held is not None:
            assert Counter(held) == Counter(expected), (
                f"{what}: destination holds {sorted(held)}, expected {sorted(expected)}"
            )

    @pytest.fixture
    def system_store(self, tmp_path: Path) -> Iterator[SystemStore]:
        """The system tables (sync state, quarantine) at the context's store URL, where a checkpoint goes."""
        store = SystemStore(self.make_context(tmp_path).store_url).create()
        yield store
        store.engine.dispose()

    def test_options_model(self, plugin_class: type) -> None:
        """``options_model`` subclasses PluginConfig, refuses unknown keys and accepts ``options``."""
        model = plugin_class.options_model  # type: ignore[attr-defined]
        check_config_model(model, f"{plugin_class.__name__}.options_model")
        model.model_validate(self.options)
        with pytest.raises(ValidationError):
            model.model_validate({**self.options, UNKNOWN_KEY: 1})

    def test_forget_default(self, plugin_class: type) -> None:
        """``supports_forget`` is a bool; a class without it keeps the default ``forget`` (ForgetConformance tests one with it)."""
        supports = plugin_class.supports_forget  # type: ignore[attr-defined]
        assert isinstance(supports, bool), f"supports_forget must be a bool, got {supports!r}"
        if supports:
            assert isinstance(self, ForgetConformance), "supports_forget is True: mix ForgetConformance into this suite"
        else:
            assert plugin_class.forget is Destination.forget, "forget() is implemented but supports_forget is False"  # type: ignore[attr-defined]

    def test_write_mode_declared(self, plugin_class: type) -> None:
        """``write_mode`` is a WriteMode, ``accepts`` None or a set of kinds, and the samples are accepted."""
        write_mode = plugin_class.write_mode  # type: ignore[attr-defined]
        assert isinstance(write_mode, WriteMode), "write_mode must be a cdp_core.WriteMode"
        accepts = plugin_class.accepts  # type: ignore[attr-defined]
        if accepts is not None:
            assert all(isinstance(k, RecordKind) for k in accepts), f"accepts must hold RecordKinds: {accepts!r}"
            refused = sorted({r.kind for r in self.sample_records} - set(accepts))
            assert not refused, f"sample_records hold kinds the destination does not accept: {refused}"
        assert isinstance(plugin_class.commits_checkpoint, bool)  # type: ignore[attr-defined]

    def test_open_write_close(
        self, build_destination: Callable[[], Destination], tmp_path: Path, system_store: SystemStore
    ) -> None:
        """open, write a batch, close: the batch is held (but for records rejected with a reason)."""
        assert self.sample_records, "set sample_records: the suite needs records to write"
        destination = build_destination()
        destination.open()
        try:
            expected = self._write(destination, self._batch())
        finally:
            destination.close()
        self._check_read_back(destination, tmp_path, expected, "after one batch")

    def test_empty_batch_is_harmless(
        self, build_destination: Callable[[], Destination], tmp_path: Path, system_store: SystemStore
    ) -> None:
        """Writing an empty batch stores nothing and breaks nothing."""
        destination = build_destination()
        destination.open()
        try:
            self._write(destination, [])
            self._check_read_back(destination, tmp_path, [], "after an empty batch")
            expected = self._write(destination, self._batch())
            self._write(destination, [])
        finally:
            destination.close()
        self._check_read_back(destination, tmp_path, expected, "empty, full, empty batch")

    def test_write_mode_semantics(
        self, build_destination: Callable[[], Destination], tmp_path: Path, system_store: SystemStore
    ) -> None:
        """The same batch written twice: append holds it twice, upsert once."""
        destination = build_destination()
        destination.open()
        try:
            first = self._write(destination, self._batch())
            second = self._write(destination, self._batch())
        finally:
            destination.close()
        held = self.read_back(destination, tmp_path)
        assert held is not None, (
            "implement read_back(destination, tmp_path) returning the keys the destination holds: it proves the "
            "declared write_mode (append keeps both deliveries, upsert keeps one)"
        )
        expected = first + second if destination.write_mode is WriteMode.append else sorted(set(first + second))
        assert Counter(held) == Counter(expected), (
            f"write_mode {destination.write_mode}: after writing the batch twice the destination holds "
            f"{sorted(held)}, expected {sorted(expected)}"
        )

    def test_commits_checkpoint(
        self, build_destination: Callable[[], Destination], tmp_path: Path, system_store: SystemStore
    ) -> None:
        """A destination with ``commits_checkpoint`` commits the cursor and quarantine with its batch."""
        destination = build_destination()
        if not destination.commits_checkpoint:
            # The runner commits for it; writing must leave the checkpoint alone.
            checkpoint = self._checkpoint(commit=False)
            destination.open()
            try:
                destination.write(self._batch(), checkpoint)
            finally:
                destination.close()
            assert not checkpoint.committed, "commits_checkpoint is False, yet write() committed the checkpoint"
            return
        checkpoint = self._checkpoint(commit=True)
        checkpoint.rejected.append(
            ("conformance.node", Rejected(reason="conformance: rejected on purpose", raw={"id": "x"}, key="x"))
        )
        destination.open()
        try:
            destination.write(self._batch(), checkpoint)
        finally:
            destination.close()
        assert checkpoint.committed, "write() was handed a checkpoint but did not commit it"
        cursor = system_store.cursor("conformance", "conformance.source")
        assert cursor == {"position": 3}, f"the checkpoint's cursor was not stored (found {cursor!r})"
        assert system_store.quarantine_count("conformance") >= 1, "the checkpoint's rejected record was not stored"
