"""Export gates: what a destination node may be sent, checked by a plugin before every write.

A destination node may serve a *purpose* (``ads``, ``email``...): the node's own
``purpose = "..."`` in connectors.toml, or else its destination type's default
(:attr:`cdp_core.Destination.purpose`). For such a node the runner asks the plugins
for an :class:`ExportGate` (hook ``cdp_export_gate``) when it builds the run, and
hands every batch to the gates before the destination's ``write``: what a gate
holds back is never written and is counted per node and reason
(``NodeStats.held_back``). The kernel knows nothing of what a purpose means: the
profile product's gate reads each person's latest consent (docs/consent.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from cdp_core.records import Record

if TYPE_CHECKING:
    from cdp_core.base import Destination
    from cdp_core.graph import Node

GateResult = tuple[list[Record], dict[str, int]]
"""The records to write, and how many were held back for each reason (``"no ads consent"``)."""


class ExportGate(ABC):
    """Decides, batch by batch, which records a destination node may be sent."""

    @abstractmethod
    def check(self, batch: list[Record]) -> GateResult:
        """The records of ``batch`` that may be written (in their order), and the held-back counts by reason.

        Called once per batch right before the destination's ``write``, so the answer
        reflects the state of that moment. Must not change the records. An exception
        fails the run like a failed write: nothing of the batch is written or committed.
        """

    def close(self) -> None:
        """Release what the gate holds (a database engine); called once after the run."""


def served_purpose(node: Node, destination: type[Destination]) -> str | None:
    """The purpose a destination node serves: its own ``purpose``, else its destination type's default."""
    return node.purpose or destination.purpose
