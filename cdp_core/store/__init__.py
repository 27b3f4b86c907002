"""The store: sync state, runs and quarantine (and, later, profiles) in one database."""

from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.engine import make_engine
from cdp_core.store.system import SystemStore

__all__ = ["Checkpoint", "SystemStore", "make_engine"]
