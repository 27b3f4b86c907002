"""Unattended syncs: the scheduler, its triggers, guarded runs (lease, retries) and status.

See docs/scheduler.md. ``cdp scheduler run`` and ``cdp scheduler status`` are the
command-line side (cdp_core/cli/scheduler.py).
"""

from cdp_core.scheduler.execute import Outcome, run_guarded
from cdp_core.scheduler.service import Scheduler
from cdp_core.scheduler.status import graph_status
from cdp_core.scheduler.triggers import build_trigger

__all__ = ["Outcome", "Scheduler", "build_trigger", "graph_status", "run_guarded"]
