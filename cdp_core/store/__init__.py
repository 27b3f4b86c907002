"""The store database: the kernel's system tables (sync state, runs, quarantine, leases) and the plugins' tables."""

from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.engine import make_engine
from cdp_core.store.system import SystemStore

__all__ = ["Checkpoint", "SystemStore", "make_engine"]
