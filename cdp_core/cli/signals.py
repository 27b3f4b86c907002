"""How a long command (`cdp sync`, `cdp quarantine retry`) stops on SIGTERM or Ctrl-C: after its batch."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM and SIGINT set the event: the run ends after the batch it is writing is committed
    (as the scheduler's do). A second Ctrl-C stops at once (KeyboardInterrupt)."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        stop.set()
        # Only a raw write here: a handler may interrupt a print or a log call in progress.
        os.write(2, f"{name}: stopping after the batch being written is committed (Ctrl-C again to stop at once)\n".encode())

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
