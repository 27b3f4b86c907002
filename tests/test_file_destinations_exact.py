"""The file destinations are exact across crashes and failures: the committed length is the truth.

The kill -9 tests with the profile store are in plugins/cdp-profiles/tests/test_crash_recovery.py;
here: what a run finds at start (extra bytes, a torn line, a rotated, cut or changed file), a batch
whose checkpoint failed, a second writer, and CSV rows with newlines inside quotes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from cdp_core import Destination, Register, hookimpl
from cdp_core.builtins.filestate import OutputFile, OutputFileError
from cdp_core.plugins import Plugins, load_plugins
from cdp_core.records import Record
from cdp_core.runinfo import RunStatus
from cdp_core.store import SystemStore
from cdp_core.store.checkpoint import Checkpoint
from cdp_core.testing import run_graph

RECORDS = 30


class Boom(Destination):
    """Fails its second batch (counted in a file, so a later run passes)."""

    def write(self, batch: list[Record], checkpoint: Checkpoint) -> None:
        counter = self.context.resolve("boom.count")
        done = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(done + 1))
        if done == 1:
            raise RuntimeError("boom on the second batch")


class BoomPlugin:
    @hookimpl
    def cdp_register_destinations(self, register: Register) -> None:
        register("boom", Boom)


def _plugins() -> Plugins:
    return load_plugins(entry_points=False, extra=[("boom", BoomPlugin())])


def _people(tmp_path: Path, first: int = 0, count: int = RECORDS) -> None:
    with (tmp_path / "people.jsonl").open("a") as out:
        for n in range(first, first + count):
            out.write(json.dumps({"id": n, "n": n, "note": f"line\nbreak {n}, \"quoted\""}) + "\n")


def _config(store_url: str, *, dest: str = "jsonl_file", path: str = "out/copy.jsonl", extra: str = "") -> str:
    return f"""
[store]
url = "{store_url}"
[connectors.files]
type = "jsonl"
streams.people = {{ path = "people.jsonl", cursor_field = "n", batch_size = 10 }}
[connectors.copy]
type = "{dest}"
path = "{path}"
{extra}
[syncs.main.nodes.people]
source = "files.people"
[syncs.main.nodes.copy]
destination = "copy"
inputs = ["people"]
"""


def _keys(path: Path) -> list[int]:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"torn last line: {data[-60:]!r}"
    return [int(json.loads(line)["key"]) for line in data.decode().splitlines()]


def _run(tmp_path: Path, text: str, plugins: Plugins | None = None) -> Any:
    return run_graph(tmp_path, text, plugins or _plugins(), "main")


def test_a_run_cuts_what_a_killed_run_wrote_after_its_last_commit(tmp_path: Path, store_url: str) -> None:
    _people(tmp_path)
    text = _config(store_url)
    assert _run(tmp_path, text).status is RunStatus.succeeded
    out = tmp_path / "out" / "copy.jsonl"
    committed = out.read_bytes()
    # What a run killed after its file write and before the commit leaves: a whole batch and a torn line.
    with out.open("ab") as handle:
        handle.write(committed[: committed.index(b"\n") + 1] + b'{"stream": "files.people", "key": "2')
    _people(tmp_path, RECORDS, 5)
    run = _run(tmp_path, text)
    assert run.status is RunStatus.succeeded, run.error
    assert _keys(out) == list(range(RECORDS + 5))
    system = SystemStore(store_url)
    state = system.cursor("main", "copy")
    assert state["file"] == str(out) and state["length"] == out.stat().st_size
    system.engine.dispose()


def test_a_moved_away_file_starts_anew(tmp_path: Path, store_url: str) -> None:
    _people(tmp_path)
    text = _config(store_url)
    assert _run(tmp_path, text).status is RunStatus.succeeded
    out = tmp_path / "out" / "copy.jsonl"
    out.rename(tmp_path / "out" / "copy.1.jsonl")
    _people(tmp_path, RECORDS, 5)
    run = _run(tmp_path, text)
    assert run.status is RunStatus.succeeded, run.error
    assert _keys(out) == list(range(RECORDS, RECORDS + 5))


@pytest.mark.parametrize("change", ["cut", "rewritten"])
def test_a_file_changed_outside_cdp_fails_the_run_and_is_left_alone(
    tmp_path: Path, store_url: str, change: str
) -> None:
    _people(tmp_path)
    text = _config(store_url)
    assert _run(tmp_path, text).status is RunStatus.succeeded
    out = tmp_path / "out" / "copy.jsonl"
    data = out.read_bytes()
    # "rewritten": the end of the committed part differs (the file was replaced), and it is longer
    changed = data[: len(data) // 2] if change == "cut" else data[:-8] + b'"x": 1}\n' + b"{}\n"
    out.write_bytes(changed)
    _people(tmp_path, RECORDS, 5)
    run = _run(tmp_path, text)
    assert run.status is RunStatus.failed
    assert "OutputFileError" in (run.error or "") and str(out) in (run.error or "")
    assert ("fewer than the" if change == "cut" else "not what the last run committed") in (run.error or "")
    assert "move it away" in (run.error or "")
    assert out.read_bytes() == changed, "nothing cut, nothing appended"


def test_without_a_committed_length_only_a_torn_last_line_is_cut(tmp_path: Path, store_url: str) -> None:
    out = tmp_path / "out" / "copy.jsonl"
    out.parent.mkdir()
    out.write_bytes(b'{"key": "-1"}\n{"key": "-2"')  # a file from before, its last line torn
    _people(tmp_path)
    run = _run(tmp_path, _config(store_url))
    assert run.status is RunStatus.succeeded, run.error
    assert _keys(out) == [-1, *range(RECORDS)]


def test_a_batch_whose_checkpoint_failed_is_cut_from_the_file(tmp_path: Path, store_url: str) -> None:
    _people(tmp_path)
    text = _config(store_url, extra='[connectors.boom]\ntype = "boom"') + (
        '[syncs.main.nodes.boom]\ndestination = "boom"\ninputs = ["people"]\n'
    )
    out = tmp_path / "out" / "copy.jsonl"
    run = _run(tmp_path, text)
    assert run.status is RunStatus.failed and "boom on the second batch" in (run.error or "")
    assert _keys(out) == list(range(10)), "the second batch (written, never committed) was cut"
    run = _run(tmp_path, text)
    assert run.status is RunStatus.succeeded, run.error
    assert _keys(out) == list(range(RECORDS))


def test_a_second_writer_of_the_same_file_is_refused(tmp_path: Path, store_url: str) -> None:
    _people(tmp_path)
    text = _config(store_url) + '[syncs.main.nodes.again]\ndestination = "copy"\ninputs = ["people"]\n'
    run = _run(tmp_path, text)
    assert run.status is RunStatus.failed
    assert "is being written by another run or destination node" in (run.error or "")


def test_a_directory_in_place_of_the_file_is_a_clear_error(tmp_path: Path, store_url: str) -> None:
    _people(tmp_path)
    (tmp_path / "out" / "copy.jsonl").mkdir(parents=True)
    run = _run(tmp_path, _config(store_url))
    assert run.status is RunStatus.failed and "is a directory" in (run.error or "")


def test_csv_rows_with_newlines_survive_a_cut_and_configured_columns_get_a_header(
    tmp_path: Path, store_url: str
) -> None:
    _people(tmp_path)
    text = _config(store_url, dest="csv_file", path="out.csv", extra='columns = ["id", "note"]')
    assert _run(tmp_path, text).status is RunStatus.succeeded
    out = tmp_path / "out.csv"
    data = out.read_bytes()
    out.write_bytes(data + data[data.index(b"\r\n") + 2 : data.index(b"line") + 3])  # a torn quoted row
    _people(tmp_path, RECORDS, 5)
    assert _run(tmp_path, text).status is RunStatus.succeeded
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["id"]) for r in rows] == list(range(RECORDS + 5))
    assert rows[3]["note"] == 'line\nbreak 3, "quoted"' and rows[0]["_extra"] == json.dumps({"n": 0})


@pytest.mark.parametrize(
    ("data", "keep"),
    [
        (b"", 0),
        (b"a\n", 2),
        (b"a\nb", 2),
        (b'a,"x\ny"\r\n', 9),
        (b'a,"x\ny"\r\nb,"x\n', 9),
        (b'a,"x\n', 0),
        (b'h\r\na,"say ""hi""\n', 3),
    ],
)
def test_complete_prefix_of_a_csv_file(tmp_path: Path, data: bytes, keep: int) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    out = OutputFile(path, csv=True)
    out.open()
    try:
        out.resume(None)
        assert out.length() == keep
    finally:
        out.close()
    assert path.read_bytes() == data[:keep]


def test_an_unreadable_state_counts_as_none(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"a\nb\n")
    out = OutputFile(path)
    out.open()
    try:
        for state in ({"file": str(path), "length": "x", "tail": ""}, {"file": "other", "length": 1, "tail": ""}, 3):
            assert out.resume(state)["length"] == 4
        with pytest.raises(OutputFileError, match="fewer than the 9 committed"):
            out.resume({"file": str(path), "length": 9, "tail": ""})
    finally:
        out.close()
