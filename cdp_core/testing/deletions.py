"""The source conformance case "declared deletions", a part of :class:`SourceConformance`.

A stream that declares ``emits_deletions`` must report, after :meth:`DeclaredDeletions.delete_records`
deleted (or archived) records at the source, a tombstone of exactly those records on the next read,
each one the store can apply (:func:`tombstone_problem`). A stream that declares nothing must emit no
tombstone. See docs/testing.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from cdp_core.base import Page, Source, Stream
from cdp_core.records import Record
from cdp_core.testing.helpers import roundtrip

if TYPE_CHECKING:
    import respx

__all__ = ["DeclaredDeletions", "tombstone_problem"]


def tombstone_problem(record: Record, target: Stream, connector: str) -> str | None:
    """What keeps the store from applying a tombstone of ``target``'s records, or None."""
    if record.deleted is not True:
        return f"deleted is {record.deleted!r}, not True"
    if not isinstance(record.key, str) or not record.key.strip():
        return "an empty key: the store cannot find the record it deletes"
    if record.kind != target.kind:
        return f"kind {record.kind}, but the records of stream {target.name!r} it deletes are {target.kind}"
    if record.stream not in (target.name, f"{connector}.{target.name}"):
        return f"stream {record.stream!r}: the store holds the record under {connector}.{target.name!r}"
    if record.data or record.identifiers:
        return f"data {sorted(record.data)} or identifiers {sorted(record.identifiers)}: a tombstone holds none"
    return None


class DeclaredDeletions:
    """The deletions case; mixed into :class:`~cdp_core.testing.SourceConformance` (uses its fixtures)."""

    stream: ClassVar[str]
    connector_name: ClassVar[str]

    def delete_records(self, respx_mock: respx.Router, tmp_path: Path) -> list[str] | None:
        """Delete records at the source after a full read (archive them, mark them deleted); return their keys.

        Only for a stream that declares ``emits_deletions``: the suite then reads from the final
        cursor and expects a tombstone of exactly these records (:meth:`test_declared_deletions`).
        """
        return None

    def test_declared_deletions(
        self, full_read: list[Page], build_source: Callable[..., Source], source_env: respx.Router, tmp_path: Path
    ) -> None:
        """Tombstones only from a stream that declares ``emits_deletions``, and each one the store can apply.

        A stream that declares nothing passes when its full read holds no tombstone. A declared
        one: after :meth:`delete_records`, a read from the final cursor yields a tombstone of
        exactly those records, and every tombstone (of both reads) names a record the store
        holds: a non-empty key, the kind and the stream name of the records it deletes (the
        stream's own, or its ``records_of``: a stream of the source that delivers live records
        under its own name), and no data or identifiers that would be stored.
        """
        source = build_source()
        stream = source.stream(self.stream)
        tombstones = [r for page in full_read for r in page.records if r.deleted]
        if not stream.emits_deletions:
            assert not tombstones, (
                f"stream {self.stream!r} does not declare emits_deletions, yet its read yielded tombstones of "
                f"{sorted(r.key for r in tombstones)}: set emits_deletions = True on the stream"
            )
            assert type(self).delete_records is DeclaredDeletions.delete_records, (
                f"delete_records() is implemented, but stream {self.stream!r} does not declare emits_deletions"
            )
            return  # nothing declared, nothing emitted: there is no deletion to check
        target_name = stream.records_of or self.stream
        offered = {s.name: s for s in source.streams()}
        assert target_name in offered, (
            f"stream {self.stream!r}: records_of = {target_name!r} is no stream of the source (streams: {sorted(offered)})"
        )
        target = offered[target_name]
        assert target.records_of is None, (
            f"stream {self.stream!r} deletes records of {target_name!r}, which delivers {target.records_of!r}'s records: "
            "name the stream whose records the store holds"
        )
        final = full_read[-1].cursor
        deleted = self.delete_records(source_env, tmp_path)
        assert deleted is not None, (
            f"stream {self.stream!r} declares emits_deletions: implement delete_records(source_env, tmp_path) "
            "(delete or archive records at the source after a full read, return their keys); it proves that "
            "the next run reports exactly those deletions"
        )
        after = [r for page in build_source().stream(self.stream).read(roundtrip(final)) for r in page.records]
        for record in tombstones + [r for r in after if r.deleted]:
            problem = tombstone_problem(record, target, self.connector_name)
            assert problem is None, f"tombstone {record.key!r} of stream {self.stream!r}: {problem}"
        got, expected = Counter(r.key for r in after if r.deleted), Counter(deleted)
        if final is None:  # a full-refresh stream reads the earlier tombstones again
            expected += Counter(r.key for r in tombstones)
        assert got == expected, (
            f"after delete_records() deleted {sorted(deleted)}, the read from cursor {final!r} gave tombstones of "
            f"{sorted(got.elements())}, expected {sorted(expected.elements())}"
        )
        live = sorted(r.key for r in after if not r.deleted and r.key in set(deleted))
        assert not live, f"records deleted by delete_records() came back as live records: {live}"
