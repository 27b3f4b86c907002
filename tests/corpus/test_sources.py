"""Bad-input corpus: source files a sync must survive, record by record, through the real CLI.

Each case is one file read by a ``csv`` or ``jsonl`` stream into a ``jsonl_file``
destination, synced with ``cdp sync`` in a subprocess, on SQLite and PostgreSQL.
Each asserts the exit code, a message that says what and where (a quarantine
reason, or the run's error), no traceback in any output, and the counts: every
record read is stored or quarantined, none silently skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdp_core.store.system import SystemStore

pytest_plugins = ["cdp_core.testing.databases"]

SECRET = "s3cr3t-Corpus-Value\\x"


@dataclass(frozen=True)
class Case:
    file: str
    content: bytes
    stored: int
    quarantined: int
    message: str
    """In a quarantine reason (quarantined > 0), else in the run's error (exit 1)."""
    options: str = ""
    exit_code: int = 0


BIG = "x" * 200_000
DEEP = "[" * 200 + "]" * 200

CASES: dict[str, Case] = {
    "csv-too-many-fields": Case("p.csv", b"id,email\n1,a@x.com\n2,b@x.com,extra\n3,c@x.com\n", 2, 1, "p.csv line 3: 3 fields, header has 2"),
    "csv-missing-key": Case("p.csv", b"id,email\n1,a@x.com\n,b@x.com\n", 1, 1, "p.csv line 3: missing primary key id"),
    "csv-oversized-field": Case(
        "p.csv", f"id,note\n1,a\n2,{BIG}\n3,c\n".encode(), 2, 1, "p.csv line 3: unreadable CSV record: field larger than field limit"
    ),
    "csv-oversized-quoted-multiline-field": Case(
        "p.csv", f'id,note\n1,a\n2,"{BIG}\nmore,lines"\n3,c\n'.encode(), 2, 1, "p.csv line 3-4: unreadable CSV record"
    ),
    "csv-undeclared-latin1": Case(
        "p.csv", "id,name\n1,Ann\n2,J\u00fcrgen\n".encode("latin-1"), 0, 0, "p.csv: line 3, byte 17: not valid utf-8", exit_code=1
    ),
    "csv-declared-latin1": Case(
        "p.csv", "id,name\n1,Ann\n2,J\u00fcrgen\n".encode("latin-1"), 2, 0, "", options=', encoding = "latin-1"'
    ),
    "csv-utf8-bom": Case("p.csv", b"\xef\xbb\xbfid,name\n1,Ann\n", 1, 0, ""),
    "csv-cursor-not-a-date": Case(
        "p.csv",
        b"id,updated\n1,2024-02-10T10:00:00Z\n2,last tuesday\n3,2024-02-11T10:00:00Z\n",
        2,
        1,
        "p.csv line 3: cursor field 'updated': 'last tuesday' is not a date-time",
        options=', cursor_field = "updated", cursor_type = "timestamp"',
    ),
    "csv-cursor-ambiguous-date": Case(
        "p.csv",
        b"id,updated\n1,2024-02-10\n2,12/02/2024\n3,2024-02-11\n",
        2,
        1,
        "'12/02/2024' is not a date-time (not ISO 8601",
        options=', cursor_field = "updated", cursor_type = "timestamp"',
    ),
    "csv-cursor-inferred-number-then-text": Case(
        "p.csv",
        b"id,seq\n1,1\n2,2\n3,three\n4,4\n",
        3,
        1,
        "'three' is not a number (the cursor did not move); the cursor's type 'number' was inferred",
        options=', cursor_field = "seq"',
    ),
    "csv-cursor-missing": Case(
        "p.csv", b"id,seq\n1,1\n2,\n", 1, 1, "p.csv line 3: no value in cursor field 'seq'", options=', cursor_field = "seq"'
    ),
    "jsonl-invalid-json": Case("p.jsonl", b'{"id": "1"}\n{"id": "2",\n{"id": "3"}\n', 2, 1, "p.jsonl line 2: invalid JSON"),
    "jsonl-not-an-object": Case("p.jsonl", b'{"id": "1"}\n[1, 2]\n', 1, 1, "p.jsonl line 2: expected a JSON object"),
    "jsonl-deeply-nested": Case(
        "p.jsonl", f'{{"id": "1"}}\n{{"id": "2", "x": {DEEP}}}\n{{"id": "3"}}\n'.encode(), 2, 1, "p.jsonl line 2: JSON nested deeper than 64 levels"
    ),
    "jsonl-very-deeply-nested": Case(
        "p.jsonl", ('{"id": "1"}\n{"id": "2", "x": ' + "[" * 5000 + "]" * 5000 + "}\n").encode(), 1, 1, "p.jsonl line 2: JSON nested deeper"
    ),
    "jsonl-invalid-utf8": Case(
        "p.jsonl", b'{"id": "1"}\n{"id": "2", "name": "J\xfcrgen"}\n', 0, 0, "p.jsonl: line 2, byte 34: not valid utf-8", exit_code=1
    ),
    "jsonl-compact-date-cursor-is-a-date": Case(
        "p.jsonl",
        b'{"id": "1", "day": "2024-02-11"}\n{"id": "2", "day": "20240212"}\n{"id": "3", "day": 20240213}\n',
        2,
        1,
        "an eight-digit number is ambiguous",
        options=', cursor_field = "day", cursor_type = "timestamp"',
    ),
    "jsonl-nan-is-not-json": Case(
        "p.jsonl", b'{"id": "1", "n": 1}\n{"id": "2", "n": NaN}\n{"id": "3", "n": 3}\n', 2, 1, "p.jsonl line 2: invalid JSON: NaN is not a JSON value",
        options=', cursor_field = "n"',
    ),
    "csv-cursor-nan": Case(
        "p.csv", b"id,n\n1,1\n2,nan\n3,3\n", 2, 1, "cursor field 'n': 'nan' is not a finite number", options=', cursor_field = "n"'
    ),
}


def _sync(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdp_core.cli", "sync", "main", "-c", "connectors.toml", "--json"],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "CDP_DISABLE_PLUGINS": "", "CORPUS_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_bad_source_file(name: str, tmp_path: Path, store_url: str) -> None:
    case = CASES[name]
    (tmp_path / case.file).write_bytes(case.content)
    kind = "csv" if case.file.endswith(".csv") else "jsonl"
    (tmp_path / "connectors.toml").write_text(
        f"""
[store]
url = "{store_url}"

[connectors.src]
type = "{kind}"
streams.people = {{ path = "{case.file}", batch_size = 2{case.options} }}

[connectors.out]
type = "jsonl_file"
path = "out.jsonl"

[connectors.unused]
type = "jsonl"
streams.x = {{ path = "${{CORPUS_SECRET}}.jsonl" }}

[syncs.main.nodes.people]
source = "src.people"

[syncs.main.nodes.out]
destination = "out"
inputs = ["people"]
""",
        encoding="utf-8",
    )
    done = _sync(tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == case.exit_code, output
    assert "Traceback" not in output and SECRET not in output
    out = tmp_path / "out.jsonl"
    stored = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
    assert "\ufffd" not in "".join(stored)  # never a replacement character
    system = SystemStore(store_url)
    try:
        entries: list[dict[str, Any]] = system.quarantine("main")
        [run] = json.loads(done.stdout)
        assert len(stored) == case.stored, stored
        assert len(entries) == case.quarantined, entries
        node = run["nodes"]["people"]
        assert (node["records_out"], node["rejected"]) == (case.stored, case.quarantined)
        if case.quarantined:
            assert any(case.message in e["reason"] for e in entries), [e["reason"] for e in entries]
        elif case.exit_code:
            assert case.message in run["error"] and case.message in output
        for entry in entries:
            json.dumps(entry["payload"])  # kept as JSON, whatever it was
            assert SECRET not in json.dumps(entry, default=str)
    finally:
        system.engine.dispose()


def test_a_cursor_column_that_changes_format_skips_nothing(tmp_path: Path, store_url: str) -> None:
    """Rows in ISO dates, then a compact date, then a day-first date, then ISO again: every row is
    stored or quarantined (text comparison would have hidden the later ones), and the watermark is
    the newest readable value."""
    rows = [
        ("1", "2024-02-10T09:00:00Z"),
        ("2", "2024-02-10T11:00:00+01:00"),  # earlier than row 1 in UTC, later as text
        ("3", "20240211"),  # compact date: the 11th of February, never Unix time
        ("4", "12.02.2024"),  # day first: refused, not guessed
        ("5", "2024-02-13 08:00:00"),
        ("6", "2024-02-09T00:00:00Z"),  # older than the others: a late arrival, still read on the first run
    ]
    text = "id,updated\n" + "".join(f"{i},{u}\n" for i, u in rows)
    (tmp_path / "p.csv").write_text(text, encoding="utf-8")
    (tmp_path / "connectors.toml").write_text(
        f"""
[store]
url = "{store_url}"

[connectors.src]
type = "csv"
streams.people = {{ path = "p.csv", cursor_field = "updated", cursor_type = "timestamp", batch_size = 2 }}

[connectors.out]
type = "jsonl_file"
path = "out.jsonl"

[syncs.main.nodes.people]
source = "src.people"

[syncs.main.nodes.out]
destination = "out"
inputs = ["people"]
""",
        encoding="utf-8",
    )
    done = _sync(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    stored = [json.loads(line)["key"] for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    system = SystemStore(store_url)
    try:
        entries = system.quarantine("main")
        assert stored == ["1", "2", "3", "5", "6"]
        assert [e["record_key"] or e["payload"]["id"] for e in entries] == ["4"]
        assert "p.csv line 5: cursor field 'updated': '12.02.2024' is not a date-time" in entries[0]["reason"]
        assert len(stored) + len(entries) == len(rows)
        assert system.cursor("main", "people") == {"watermark": "2024-02-13T08:00:00Z", "type": "timestamp"}
        # a new row after the watermark is read; the earlier ones are not read again
        with (tmp_path / "p.csv").open("a", encoding="utf-8") as handle:
            handle.write("7,2024-02-14T00:00:00Z\n")
        assert _sync(tmp_path).returncode == 0
        lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line)["key"] for line in lines] == [*stored, "7"]
    finally:
        system.engine.dispose()
