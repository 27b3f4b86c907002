"""Bad-input corpus: the operator commands (`cdp quarantine list|retry`, `cdp state show|set|reset`) given
bad arguments or a bad store, through the real CLI in a subprocess.

Each case asserts the exit code, a one-line message that says what and where, no
traceback, no secret in any output or table, and the counts: the synced store keeps
every record read, stored or quarantined (read = stored + quarantined), and a refused
command changes none of it. Cases with a synced store run on SQLite and PostgreSQL;
those about a store that is not there (or is a folder, or an empty file) are about
SQLite's file, except "no cdp tables", which runs on both.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from cdp_core.store import SystemStore

SECRET = "Ops-S3cret\\Hook-4711"
"""In the alert webhook's URL: a secret of the config, never to be printed (with a backslash: its repr differs)."""
ROWS = "id,email,updated\n1,a@example.com,2024-01-01\n2,b@example.com,2024-01-02,extra\n3,c@example.com,2024-01-03\n"
READ, STORED, QUARANTINED = 3, 2, 1

CONFIG = """
[store]
url = "{url}"

[alerts]
webhook_url = "https://hooks.example.com/${{OPS_HOOK}}"

[connectors.crm]
type = "csv"
[connectors.crm.streams.contacts]
path = "contacts.csv"
cursor_field = "updated"

[connectors.out]
type = "jsonl_file"
path = "out.jsonl"

[syncs.g.nodes.crm]
source = "crm.contacts"
[syncs.g.nodes.out]
destination = "out"
inputs = ["crm"]
"""


def cdp(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CDP_CONFIG"} | {"OPS_HOOK": SECRET, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "cdp_core.cli", *args, "-c", str(folder / "connectors.toml")],
        check=False,  # the exit code is what the cases look at
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    exit_code: int
    message: str
    """A regular expression the output must match (in one line)."""


# -- against a synced store, on both databases ------------------------------------------------

SYNCED: dict[str, Case] = {
    "retry-nothing-matches": Case(
        ("quarantine", "retry", "--reason", "no such reason"), 0,
        r"^nothing in quarantine matches --reason 'no such reason': nothing retried$",
    ),
    "retry-unknown-graph": Case(
        ("quarantine", "retry", "--graph", "nightly"), 2, r"^error: no sync graph 'nightly' in \S+connectors\.toml; graphs: g$"
    ),
    "retry-unknown-node-of-graph": Case(
        ("quarantine", "retry", "--graph", "g", "--node", "clean"), 2, r"^error: graph 'g' has no node 'clean'; nodes: crm, out$"
    ),
    "retry-node-of-no-graph": Case(
        ("quarantine", "retry", "--node", "clean"), 2, r"^error: no graph of \S+connectors\.toml has a node 'clean'$"
    ),
    "retry-bad-reason-pattern": Case(
        ("quarantine", "retry", "--reason", "re:fields ("), 2,
        r"^error: --reason: not a regular expression: 'fields \(' \(missing \), unterminated subpattern at position 7\)$",
    ),
    "retry-id-not-a-number": Case(("quarantine", "retry", "--id", "first"), 2, r"Invalid value for '--id': Input should be a valid integer"),
    "state-set-not-json": Case(
        ("state", "set", "g", "crm", "{watermark: 2024}"), 2,
        r"^error: VALUE for g\.crm is not JSON \(Expecting property name enclosed in double quotes: line 1 column 2 \(char 1\)\): "
        r"'\{watermark: 2024\}'; text needs quotes",
    ),
    "state-set-unquoted-date": Case(
        ("state", "set", "g", "crm", "2024-05-01"), 2, r"^error: VALUE for g\.crm is not JSON \(Extra data: line 1 column 5"
    ),
    "state-set-destination-node": Case(
        ("state", "set", "g", "out", "1"), 2,
        r"^error: graph 'g' has no source node 'out' \(it is a destination: only source nodes have a cursor\); source nodes: crm$",
    ),
    "state-set-unknown-node": Case(("state", "set", "g", "crn", "1"), 2, r"^error: graph 'g' has no source node 'crn'; source nodes: crm$"),
    "state-show-unknown-graph": Case(("state", "show", "G"), 2, r"^error: no sync graph 'G' in \S+connectors\.toml; graphs: g$"),
    "state-reset-unknown-node": Case(("state", "reset", "g", "store"), 2, r"^error: graph 'g' has no source node 'store'; source nodes: crm$"),
    "state-set-no-value": Case(("state", "set", "g", "crm"), 2, r"Missing argument 'VALUE'"),
}


def table_dump(url: str) -> list[Any]:
    """Every row of the system tables cdp wrote (no secret may be in any)."""
    with SystemStore(url).engine.connect() as conn:
        return [
            list(row)
            for table in ("sync_state", "sync_runs", "quarantine")
            for row in conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 - fixed names
        ]


def counts(folder: Path, url: str) -> tuple[int, int, Any]:
    lines = (folder / "out.jsonl").read_text().splitlines()
    return len(lines), SystemStore(url).quarantine_count("g"), SystemStore(url).cursor("g", "crm")


@pytest.mark.parametrize("case", list(SYNCED.values()), ids=list(SYNCED))
def test_operator_command_on_a_synced_store(case: Case, tmp_path: Path, store_url: str) -> None:
    (tmp_path / "contacts.csv").write_text(ROWS, encoding="utf-8")
    (tmp_path / "connectors.toml").write_text(CONFIG.format(url=store_url), encoding="utf-8")
    synced = cdp(tmp_path, "sync", "g")
    assert synced.returncode == 0, synced.stderr
    before = counts(tmp_path, store_url)
    assert before[:2] == (STORED, QUARANTINED) and STORED + QUARANTINED == READ, "read = stored + quarantined"

    done = cdp(tmp_path, *case.args)

    output = done.stdout + done.stderr
    assert done.returncode == case.exit_code, output
    assert any(re.search(case.message, line) for line in output.splitlines()), output
    assert "Traceback" not in output
    assert counts(tmp_path, store_url) == before, "a refused command changes nothing"
    assert SECRET not in output and repr(SECRET)[1:-1] not in output
    assert not any(SECRET in json.dumps(row, default=str) for row in table_dump(store_url))


# -- a store that is not there, or not a store ------------------------------------------------

MISSING: dict[str, Case] = {
    "state-show-no-store": Case(("state", "show", "g"), 1, r"^error: no store at \S+store\.sqlite: nothing has been synced yet \(run `cdp sync` first\)$"),
    "state-reset-no-store": Case(("state", "reset", "g", "crm"), 1, r"^error: no store at \S+store\.sqlite: nothing has been synced yet"),
    "retry-no-store": Case(("quarantine", "retry"), 1, r"^error: no store at \S+store\.sqlite: nothing has been synced yet"),
    "list-no-store": Case(("quarantine", "list", "--graph", "g"), 1, r"^error: no store at \S+store\.sqlite: nothing has been synced yet"),
}


@pytest.mark.parametrize("case", list(MISSING.values()), ids=list(MISSING))
def test_operator_command_without_a_store_creates_none(case: Case, tmp_path: Path) -> None:
    (tmp_path / "contacts.csv").write_text(ROWS, encoding="utf-8")
    (tmp_path / "connectors.toml").write_text(CONFIG.format(url="sqlite:///store.sqlite"), encoding="utf-8")
    done = cdp(tmp_path, *case.args)
    output = done.stdout + done.stderr
    assert done.returncode == case.exit_code, output
    assert re.search(case.message, output.strip()) and len(output.strip().splitlines()) == 1, output
    assert "Traceback" not in output and SECRET not in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["connectors.toml", "contacts.csv"], "no store, nothing read"


def test_a_folder_where_the_store_file_should_be(tmp_path: Path) -> None:
    (tmp_path / "store.sqlite").mkdir()
    (tmp_path / "connectors.toml").write_text(CONFIG.format(url="sqlite:///store.sqlite"), encoding="utf-8")
    done = cdp(tmp_path, "state", "show", "g")
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, output
    assert re.fullmatch(r"error: the store \S+store\.sqlite is a folder, not a SQLite database file", output)
    assert "Traceback" not in output and SECRET not in output


def test_a_store_without_cdp_tables(tmp_path: Path, store_url: str) -> None:
    """An empty SQLite file, or a PostgreSQL database no cdp ever wrote to."""
    if store_url.startswith("sqlite"):
        Path(store_url.removeprefix("sqlite:///")).write_bytes(b"")
    (tmp_path / "connectors.toml").write_text(CONFIG.format(url=store_url), encoding="utf-8")
    done = cdp(tmp_path, "state", "reset", "g")
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, output
    assert re.fullmatch(
        r"error: no cdp store in \S+: it holds no cdp tables \(nothing has been synced yet: run `cdp sync` first\)", output
    )
    assert "Traceback" not in output and SECRET not in output
    engine = SystemStore(store_url).engine
    assert inspect(engine).get_table_names() == [], "a read command creates no table"
    engine.dispose()
