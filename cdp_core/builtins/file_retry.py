"""``cdp quarantine retry`` for the file sources: a quarantined row read again, the way a sync reads it.

The row is written to a scratch file in the stream's own format and read by a copy of
the stream pointed at that file, from no cursor. So today's options decide (columns,
primary key, cursor and timestamp fields, identifiers, encoding), and every check a
sync makes on a row, the retry makes too, with no second parser to keep in step.

A CSV row rejected because its field count did not match the header is written under
the file's *current* header: a header fixed since (a missing column added) makes the
row readable. Any other CSV row is written under the columns it was quarantined with.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdp_core.records import JsonValue, Record, Rejected

if TYPE_CHECKING:
    from cdp_core.builtins.files import _FileStream

VALUES_KEY = "_values"
"""Where the CSV source keeps a row's values when their count did not match the header."""


class _Unreadable(Exception):
    """The payload cannot be turned into a row of the stream's format."""


def parse_row(stream: _FileStream, raw: JsonValue) -> Record | Rejected:
    """The record ``raw`` (a row the stream quarantined) is today, or why it is still rejected."""
    # the stream's own reading of its encoding (unset: UTF-8), never a second default
    encoding = stream._encoding()
    try:
        text = _csv_text(stream, raw, encoding) if hasattr(stream.config, "delimiter") else _jsonl_text(raw)
        content = text.encode(encoding)
    except (_Unreadable, UnicodeError, OSError) as exc:
        return Rejected(reason=f"{stream.qualified}: the quarantined row cannot be read again: {exc}", raw=raw)
    with tempfile.TemporaryDirectory(prefix="cdp-retry-") as folder:
        scratch = Path(folder) / stream.path.name
        scratch.write_bytes(content)
        clone = copy.copy(stream)
        clone.path = scratch
        records: list[Record] = []
        rejects: list[Rejected] = []
        for page in clone.read(None):
            records += page.records
            rejects += page.rejects
    if rejects:
        from cdp_core.retry import WHERE  # not at import: the runner imports the builtins

        # The scratch file's name and line numbers mean nothing to the reader: the file's name, no line.
        reason = WHERE.sub("", rejects[0].reason.replace(str(scratch), str(stream.path))).strip()
        return Rejected(reason=reason, raw=raw, key=rejects[0].key)
    if len(records) != 1:
        return Rejected(reason=f"{stream.qualified}: the quarantined row reads as {len(records)} records", raw=raw)
    return records[0]


def _jsonl_text(raw: JsonValue) -> str:
    # A line that was not JSON is quarantined as its text; anything else as the value it held.
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    if "\n" in text or "\r" in text:
        raise _Unreadable("it spans several lines")
    return text + "\n"


def _csv_text(stream: _FileStream, raw: JsonValue, encoding: str) -> str:
    if not isinstance(raw, dict):
        raise _Unreadable(f"expected the row's columns and values, got {type(raw).__name__}")
    delimiter = str(getattr(stream.config, "delimiter", ","))
    values: list[Any]
    if isinstance(raw.get(VALUES_KEY), list):
        header = _current_header(stream, encoding, delimiter)
        values = list(raw[VALUES_KEY])
    else:
        header = list(raw)
        values = [raw[column] for column in header]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def _current_header(stream: _FileStream, encoding: str, delimiter: str) -> list[str]:
    try:
        with stream.path.open("rb") as handle:
            line = handle.readline()
    except OSError as exc:
        raise _Unreadable(f"its values need the header of {stream.path}, which cannot be read ({exc.strerror or exc})") from None
    header = next(csv.reader([line.decode(encoding)], delimiter=delimiter), [])
    if not header:
        raise _Unreadable(f"its values need the header of {stream.path}, which is empty")
    return header
