"""The source conformance suite: the contract of a source (base.Source / base.Stream), tested on one stream.

Subclass :class:`SourceConformance` in a module pytest collects (see :mod:`cdp_core.testing.conformance`);
it reads the stream from the start, resumes after every page and from the final cursor, reads
what was added since, and mixes in the checks of data changing between pages
(:mod:`cdp_core.testing.changing_pages`) and of declared deletions (:mod:`cdp_core.testing.deletions`).
See docs/testing.md.
"""

from __future__ import annotations

import builtins
import io
import json
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from cdp_core.base import ConnectorContext, Page, Source, Stream
from cdp_core.plugins import Role
from cdp_core.records import Record, RecordKind, Rejected
from cdp_core.testing.changing_pages import ChangingPages
from cdp_core.testing.conformance_base import PluginConformance, identifiers_problem, new_source
from cdp_core.testing.deletions import DeclaredDeletions
from cdp_core.testing.helpers import make_context, read_keys, roundtrip

if TYPE_CHECKING:
    import respx

__all__ = ["SourceConformance", "no_io"]


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


class SourceConformance(ChangingPages, DeclaredDeletions, PluginConformance):
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
            source = new_source(plugin_class, self.config if config is None else config, self.make_context(tmp_path))
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
