"""An output file appended to exactly once across crashes: the file destinations' engine.

The runner commits a source's cursor only after every destination fed by the page
has its batch durably. A file destination appends and fsyncs the batch, then hands
the file's new length to the checkpoint (``checkpoint.keep``): the length is
committed in the same transaction as the cursor. A process killed between its
append and the commit leaves bytes in the file that the store does not know of
(a batch the next run sends again, or a torn last line); so when a run starts
(:meth:`OutputFile.resume`), the file is cut back to the committed length before
anything is appended. Within a run, a batch whose checkpoint was not committed (a
later destination or the commit failed) is cut before the next append and at close.

What is committed with the cursor: ``{"file": path, "length": bytes, "tail": hash}``,
``tail`` being a hash of the bytes just before ``length``. The file found at start
must still begin with what was committed:

- longer, same tail: the rest was never committed; it is cut (logged);
- missing or empty: it was moved away (a rotation); a new file starts;
- shorter but not empty, or another tail: it was changed outside cdp; the run
  fails and says so, and the file is left alone;
- no committed length (first run, or a state reset): an existing file is kept,
  except an incomplete last line (or CSV row), which is cut.

Each file belongs to one destination node: while a run writes it, it holds an
exclusive ``flock``, so a second writer (another node, graph or process) is refused
instead of interleaving lines.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cdp_core.records import JsonValue

if TYPE_CHECKING:
    from cdp_core.store.checkpoint import Checkpoint

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock, the rest holds
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("cdp.files")

TAIL = 64
"""Bytes before the committed length whose hash is committed with it."""
CHUNK = 1 << 20


class OutputFileError(Exception):
    """The output file cannot be appended to safely; nothing was written."""


class OutputFile:
    """One output file, opened for a run: append with fsync, resume at the committed length."""

    def __init__(self, path: Path, *, csv: bool = False, where: str = "") -> None:
        self.path = path
        self.csv = csv
        """CSV rows may hold newlines inside quotes: a complete file has an even number of quotes."""
        self.where = where or str(path)
        self._fd: int | None = None
        self._pending: tuple[Checkpoint, int] | None = None
        """The checkpoint of the last append and the length before it."""

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        if self.path.is_dir():
            raise OutputFileError(f"{self.where}: {self.path} is a directory, not a file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OutputFileError(
                        f"{self.where}: {self.path} is being written by another run or destination node; "
                        "each file destination needs a file of its own"
                    ) from None
                raise
        self._fd = fd

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self._undo_aborted()
        finally:
            os.close(self._fd)  # releases the lock
            self._fd = None

    # -- state -----------------------------------------------------------------------------
    def length(self) -> int:
        return os.fstat(self._handle()).st_size

    def state(self) -> dict[str, JsonValue]:
        """What is committed with the cursor: the file, its length, the hash of its last bytes."""
        length = self.length()
        return {"file": str(self.path), "length": length, "tail": self._tail(length)}

    def first_line(self) -> bytes:
        """The file's first line (a CSV header), without its line end; empty for an empty file."""
        line = os.pread(self._handle(), CHUNK, 0).split(b"\n", 1)[0]
        return line.rstrip(b"\r")

    def resume(self, committed: JsonValue) -> dict[str, JsonValue]:
        """Bring the file back to what the store committed (see the module's docstring); return the state to commit."""
        size = self.length()
        recorded = _recorded(committed, self.path)
        if recorded is None:
            keep = self._complete_prefix(size)
            if keep < size:
                log.warning(
                    "%s: %s ends in an incomplete %s (%d bytes, no committed length recorded); cut it",
                    self.where, self.path, "row" if self.csv else "line", size - keep,
                )
                self._truncate(keep)
            return self.state()
        length, tail = recorded
        if size == 0 and length > 0:
            log.warning("%s: %s is missing or empty (moved away?); starting a new file", self.where, self.path)
            return self.state()
        if size < length:
            raise OutputFileError(
                f"{self.where}: {self.path} holds {size} bytes, fewer than the {length} committed by the last run: "
                "it was cut or replaced outside cdp; move it away and a new file is started"
            )
        if self._tail(length) != tail:
            raise OutputFileError(
                f"{self.where}: the first {length} bytes of {self.path} are not what the last run committed: "
                "it was changed or replaced outside cdp; move it away and a new file is started"
            )
        if size > length:
            log.info(
                "%s: cut %d bytes after the committed length %d of %s (written by a run that did not commit them)",
                self.where, size - length, length, self.path,
            )
            self._truncate(length)
        return self.state()

    # -- writing ---------------------------------------------------------------------------
    def append(self, data: bytes, checkpoint: Checkpoint | None) -> dict[str, JsonValue]:
        """Append ``data`` and fsync; the state to commit with ``checkpoint``."""
        fd = self._handle()
        self._undo_aborted()
        before = self.length()
        self._pending = (checkpoint, before) if checkpoint is not None else None
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        return self.state()

    # -- internals -------------------------------------------------------------------------
    def _handle(self) -> int:
        assert self._fd is not None, "open() was not called"
        return self._fd

    def _undo_aborted(self) -> None:
        """The last append's checkpoint was given up (not committed): cut what it appended."""
        if self._pending is not None and self._pending[0].aborted:
            before = self._pending[1]
            log.info("%s: cut the batch whose checkpoint was not committed from %s", self.where, self.path)
            self._truncate(before)
        self._pending = None

    def _truncate(self, length: int) -> None:
        fd = self._handle()
        os.ftruncate(fd, length)
        os.fsync(fd)

    def _tail(self, length: int) -> str:
        start = max(0, length - TAIL)
        data = os.pread(self._handle(), length - start, start) if length else b""
        return hashlib.sha256(data).hexdigest()[:32]

    def _complete_prefix(self, size: int) -> int:
        """The length of the file's longest prefix that ends with a complete line (CSV: row)."""
        fd = self._handle()
        quotes_total = 0
        if self.csv:
            for offset in range(0, size, CHUNK):
                quotes_total += os.pread(fd, CHUNK, offset).count(b'"')
        # Walk back from the end to the last newline that is not inside quotes.
        quotes_after = 0
        end = size
        while end > 0:
            start = max(0, end - CHUNK)
            chunk = os.pread(fd, end - start, start)
            position = len(chunk)
            while True:
                newline = chunk.rfind(b"\n", 0, position)
                if newline < 0:
                    break
                if self.csv:
                    quotes_after += chunk.count(b'"', newline + 1, position)
                if not self.csv or (quotes_total - quotes_after) % 2 == 0:
                    return start + newline + 1
                position = newline
            if self.csv:
                quotes_after += chunk.count(b'"', 0, position)
            end = start
        return 0


def _recorded(state: JsonValue, path: Path) -> tuple[int, str] | None:
    """The committed (length, tail) of ``path``; None when none is recorded for this very file."""
    if not isinstance(state, dict) or state.get("file") != str(path):
        return None
    length, tail = state.get("length"), state.get("tail")
    if not isinstance(length, int) or isinstance(length, bool) or length < 0 or not isinstance(tail, str):
        return None
    return length, tail
