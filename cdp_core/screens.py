"""Record screens: records no node may store, pass on or quarantine (a suppressed person's).

For each run the runner asks the plugins for a :class:`RecordScreen` (hook
``cdp_record_screen``), once, when it builds the run. Every screen returned is applied:

- to every page a source yields, before any transform sees it;
- to each destination's batch right before its ``write`` (a transform may have added
  an identifier), before the export gates;
- to every quarantine entry, whichever node rejected it, in the transaction that
  writes the quarantine (:meth:`Checkpoint.write <cdp_core.store.checkpoint.Checkpoint.write>`,
  the one place quarantine rows are written), and to every entry ``cdp quarantine retry``
  sends again.

What a screen drops is neither passed on, written nor quarantined: it is counted in the
node's ``suppressed`` (``NodeStats.suppressed``). A plugin with nothing to screen returns
None, and a run without screens does none of this. The kernel knows nothing of who is
suppressed or why: the profile product's screen reads its suppression list (docs/privacy.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from cdp_core.records import Record, Rejected


class RecordScreen(ABC):
    """Decides which records and quarantine entries must be dropped as suppressed."""

    @abstractmethod
    def keep(self, records: list[Record]) -> list[Record]:
        """The records of ``records`` that may go on, in their order; the rest are dropped as suppressed.

        Must not change the records. An exception fails the run before the page or batch
        is written.
        """

    @abstractmethod
    def suppresses(self, rejected: Rejected) -> bool:
        """Whether a quarantine entry must be dropped instead of written: its ``raw`` payload is
        whatever the node kept (a record, a row as read, the text of a line that could not be
        parsed), and ``key`` the record key when known."""

    def close(self) -> None:
        """Release what the screen holds; called once after the run."""


def suppressed(screens: Sequence[RecordScreen], rejected: Rejected) -> bool:
    """Whether any of ``screens`` drops the quarantine entry ``rejected``."""
    return any(screen.suppresses(rejected) for screen in screens)
