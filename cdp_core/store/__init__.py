"""The store database: the kernel's system tables (sync state, runs, quarantine, leases) and the plugins' tables.

Its classes are imported on first use: a read command that needs only ``cdp_core.store.schema``
(the migration histories) does not load the system tables' models with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp_core.exports import lazy_exports

if TYPE_CHECKING:
    from cdp_core.store.checkpoint import Checkpoint
    from cdp_core.store.engine import make_engine
    from cdp_core.store.system import SystemStore

__all__ = ["Checkpoint", "SystemStore", "make_engine"]

__getattr__ = lazy_exports(
    __name__,
    {"Checkpoint": "cdp_core.store.checkpoint", "SystemStore": "cdp_core.store.system", "make_engine": "cdp_core.store.engine"},
)
