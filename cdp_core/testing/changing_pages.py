"""The source conformance case "data changes between pages", a part of :class:`SourceConformance`.

An API paged by offsets or page numbers loses records when the data changes during
the read: a record of a page already read is updated and moves to the end of the
ordering, every later record shifts one place back, and the one at the page boundary
slips into the page already read. The case makes that happen to the source under test.

A harness either implements :meth:`ChangingPages.change_between_pages` (update a record
of the first page in the fake so it moves to the end; return its key), or, for a
source whose pages cannot change while it reads, says why in ``pages_never_change``.
An incremental stream with neither fails the case and says what to implement. A
full-refresh stream (final cursor None) passes by what makes it safe: the next run
reads everything again, which the case checks (after the change, when the hook is
implemented). See docs/testing.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cdp_core.base import Page, Source
from cdp_core.testing.helpers import read_keys, roundtrip

if TYPE_CHECKING:
    import respx

__all__ = ["IMPLEMENT_CHANGE_BETWEEN_PAGES", "ChangingPages"]

IMPLEMENT_CHANGE_BETWEEN_PAGES = (
    "implement change_between_pages(respx_mock, tmp_path): update a record of the first page in your fake so that it "
    "moves to the end of the API's ordering (a newer updated_at), and return its key; it proves that paging over "
    "changing data loses nothing. Or, if the source's pages cannot change while it reads, set "
    'pages_never_change = "<why>" on the test class'
)


class ChangingPages:
    """The changing-data case; mixed into :class:`~cdp_core.testing.SourceConformance` (uses its fixtures)."""

    stream: ClassVar[str]
    pages_never_change: ClassVar[str | None] = None
    """Why this source's pages cannot change while it reads (an append-only log, a snapshot it
    pages through, a file read through one handle): the case then passes with this reason
    recorded (the test's ``user_properties``, in a JUnit report). Unset: implement
    :meth:`change_between_pages`."""

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> str | Sequence[str] | None:
        """Update a record of the first page so that it moves to the end of the API's ordering; return its key.

        Called while a read is between its first and second page (an update that lands
        while the source pages through). Return several keys when the vendor's item gives
        several records (each is then expected twice). Not overridden: the case fails and
        says so, unless ``pages_never_change`` says why it cannot happen.
        """
        return None

    def _implements_change(self) -> bool:
        return type(self).change_between_pages is not ChangingPages.change_between_pages

    def test_data_changes_between_pages(
        self,
        full_read: list[Page],
        build_source: Callable[..., Source],
        source_env: respx.Router,
        tmp_path: Path,
        record_property: Callable[[str, Any], None],
    ) -> None:
        """A record updated while the read pages through is neither lost nor repeated, nor any other.

        After the first page, :meth:`change_between_pages` moves one of its records to the end of
        the ordering (offsets over such data skip the record that shifts into the page already
        read). This run and the next, from its final cursor, must deliver every record once and
        the updated one twice (its old and its new version); a third run, nothing.
        """
        baseline = {r.key for page in full_read for r in page.records}
        full_refresh = full_read[-1].cursor is None
        if not self._implements_change():
            if full_refresh:
                self._check_full_refresh(baseline, build_source, None, record_property)
                return
            reason = self.pages_never_change
            assert reason is None or reason.strip(), "pages_never_change is blank: say why the pages cannot change"
            assert reason is not None, IMPLEMENT_CHANGE_BETWEEN_PAGES
            record_property("pages_never_change", reason)
            return
        pages = build_source().stream(self.stream).read(None)
        first = next(pages)
        returned = self.change_between_pages(source_env, tmp_path)
        assert returned is not None, "change_between_pages() returned None: return the key of the record it moved"
        moved = [returned] if isinstance(returned, str) else list(returned)
        on_first = {r.key for r in first.records}
        assert moved and set(moved) <= on_first, (
            f"change_between_pages() moved {moved!r}; it must move a record of the first page {sorted(on_first)}"
        )
        rest = list(pages)
        run1 = [r.key for page in [first, *rest] for r in page.records]
        if full_refresh:
            self._check_full_refresh(baseline | set(moved), build_source, run1, record_property)
            return
        final = (rest[-1] if rest else first).cursor
        run2, final2 = read_keys(build_source().stream(self.stream), roundtrip(final))
        run3, _ = read_keys(build_source().stream(self.stream), roundtrip(final2))
        delivered = Counter(run1) + Counter(run2)
        lost = sorted(baseline - set(delivered))
        repeated = sorted(k for k, n in delivered.items() if n > (2 if k in moved else 1))
        assert not lost, f"records lost while the data changed between pages: {lost} (this run {run1}, the next {run2})"
        assert not repeated, f"records repeated: {repeated} (this run {run1}, the next {run2})"
        once = sorted(k for k in moved if delivered[k] != 2)
        assert not once, (
            f"the updated record(s) {once} were not delivered twice (old and new version): this run {run1}, "
            f"the next {run2}"
        )
        assert not run3, f"a third run repeated {run3}"

    def _check_full_refresh(
        self,
        expected: set[str],
        build_source: Callable[..., Source],
        run1: list[str] | None,
        record_property: Callable[[str, Any], None],
    ) -> None:
        """What makes a full-refresh stream safe: no cursor field, and the next run reads every record again,
        so one that changing data hid from this run is read by the next."""
        stream = build_source().stream(self.stream)
        assert stream.cursor_field is None, (
            f"the read ended with cursor None but the stream has cursor_field {stream.cursor_field!r}: "
            "an incremental stream must end with a cursor the next run starts from"
        )
        keys, final = read_keys(stream, None)
        missing = sorted(expected - set(keys))
        assert not missing, f"a full-refresh stream must read every record again on the next run; missing {missing}" + (
            f" (this run read {run1})" if run1 is not None else ""
        )
        assert final is None, f"a full-refresh read ended with cursor {final!r} the second time"
        record_property("pages_never_change", "full refresh: the next run reads every record again")
