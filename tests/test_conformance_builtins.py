"""The conformance suite applied to the builtin file plugins and to the kit's own plugins.

Each class runs every inherited test of its suite (cdp_core.testing.conformance).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
import respx

# The kit is a pytest plugin; mark it for assertion rewriting before importing it here.
pytest.register_assert_rewrite("cdp_core.testing")

from cdp_core import transforms
from cdp_core.base import Destination
from cdp_core.builtins import files
from cdp_core.records import Record
from cdp_core.testing import (
    CollectingDestination,
    DestinationConformance,
    SourceConformance,
    TransformConformance,
    kit_plugin,
    make_records,
)

pytest_plugins = ["cdp_core.testing"]


# -- CSV source ---------------------------------------------------------------------------------

PEOPLE_HEADER = "id,email,name,updated\n"


def _person_row(n: int) -> str:
    return f"{n},Person{n}@Example.com,Person {n},2024-01-{n:02d}T10:00:00\n"


class TestCsvSource(SourceConformance):
    """Incremental by an ISO date column, two rows per page; resumes mid-file by byte offset."""

    plugin = files
    type_name = "csv"
    stream = "people"
    config: ClassVar[dict[str, Any]] = {
        "streams": {
            "people": {
                "path": "people.csv",
                "cursor_field": "updated",
                "timestamp_field": "updated",
                "identifiers": {"email": "email"},
                "batch_size": 2,
            }
        }
    }

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        (tmp_path / "people.csv").write_text(PEOPLE_HEADER + "".join(self._rows()), encoding="utf-8")

    @staticmethod
    def _rows() -> list[str]:
        # Row 4 has a quoted newline: the byte offset of a resumed read must still land on a row boundary.
        rows = [_person_row(n) for n in range(1, 8)]
        rows[3] = '4,person4@example.com,"Person\nFour",2024-01-04T10:00:00\n'
        return rows

    def change_between_pages(self, respx_mock: respx.Router, tmp_path: Path) -> str:
        # A new export replaces the file while the read is under way (written aside, then renamed):
        # person 1 was updated and now comes last. The read goes on through its open handle; the
        # watermark brings the new version next run.
        rows = self._rows()
        rows = [*rows[1:], rows[0].replace("2024-01-01T10:00:00", "2024-02-01T10:00:00")]
        aside = tmp_path / "people.csv.new"
        aside.write_text(PEOPLE_HEADER + "".join(rows), encoding="utf-8")
        aside.replace(tmp_path / "people.csv")
        return "1"

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        (tmp_path / "people.csv").write_text(PEOPLE_HEADER, encoding="utf-8")

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        with (tmp_path / "people.csv").open("a", encoding="utf-8") as handle:
            handle.write(_person_row(8) + _person_row(9))
        return ["8", "9"]


class TestCsvSourceFullRefresh(SourceConformance):
    """No cursor field: resumable mid-read, but the final cursor is None (the next run reads all again)."""

    plugin = files
    type_name = "csv"
    stream = "people"
    config: ClassVar[dict[str, Any]] = {"streams": {"people": {"path": "people.csv", "batch_size": 3}}}

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        (tmp_path / "people.csv").write_text(
            PEOPLE_HEADER + "".join(_person_row(n) for n in range(1, 8)), encoding="utf-8"
        )

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        (tmp_path / "people.csv").write_text(PEOPLE_HEADER, encoding="utf-8")

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        with (tmp_path / "people.csv").open("a", encoding="utf-8") as handle:
            handle.write(_person_row(8))
        return ["8"]


# -- JSONL source -------------------------------------------------------------------------------


def _event_line(n: int) -> str:
    return json.dumps({"event_id": f"e{n}", "seq": n, "email": f"p{n}@example.com", "type": "page_viewed"}) + "\n"


class TestJsonlSource(SourceConformance):
    """Incremental by a numeric field; a malformed line is a reject, not an error."""

    plugin = files
    type_name = "jsonl"
    stream = "events"
    config: ClassVar[dict[str, Any]] = {
        "streams": {
            "events": {
                "path": "data/events.jsonl",
                "kind": "event",
                "primary_key": "event_id",
                "cursor_field": "seq",
                "identifiers": {"email": "email"},
                "batch_size": 3,
            }
        }
    }

    def setup_source(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        lines = [_event_line(n) for n in range(1, 9)]
        lines.insert(4, "{not json\n")
        lines.insert(6, "\n")
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "events.jsonl").write_text("".join(lines), encoding="utf-8")

    def setup_empty(self, respx_mock: respx.Router, tmp_path: Path) -> None:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "events.jsonl").write_text("", encoding="utf-8")

    pages_never_change = "an event log: lines are appended, never changed or reordered"

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        with (tmp_path / "data" / "events.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(_event_line(9) + _event_line(10) + _event_line(11))
        return ["e9", "e10", "e11"]


# -- file destinations --------------------------------------------------------------------------


class TestJsonlFileDestination(DestinationConformance):
    plugin = files
    type_name = "jsonl_file"
    config: ClassVar[dict[str, Any]] = {"path": "out/records.jsonl"}

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str]:
        path = tmp_path / "out" / "records.jsonl"
        if not path.exists():
            return []
        return [json.loads(line)["key"] for line in path.read_text(encoding="utf-8").splitlines()]


class TestCsvFileDestination(DestinationConformance):
    plugin = files
    type_name = "csv_file"
    config: ClassVar[dict[str, Any]] = {"path": "out.csv"}

    def _rows(self, tmp_path: Path) -> list[dict[str, str]]:
        path = tmp_path / "out.csv"
        if not path.exists():
            return []
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str]:
        return [row["id"] for row in self._rows(tmp_path)]

    def test_reopen_keeps_one_header(self, build_destination: Any, tmp_path: Path) -> None:
        """A second run appends rows under the header the first one wrote."""
        for _ in range(2):
            destination = build_destination()
            destination.open()
            self._write(destination, self._batch())
            destination.close()
        rows = self._rows(tmp_path)
        assert [r["id"] for r in rows] == ["1", "2", "3"] * 2
        assert all(r["email"].strip().startswith("Person") for r in rows)


# -- the kit's own plugins ----------------------------------------------------------------------

ITEMS: list[dict[str, Any]] = [{"id": str(n), "email": f"p{n}@example.com", "n": n} for n in range(1, 8)]


class TestListSource(SourceConformance):
    plugin = kit_plugin
    type_name = "list_source"
    stream = "items"
    config: ClassVar[dict[str, Any]] = {
        "streams": {"items": {"records": [*ITEMS[:3], {"email": "no-key@example.com"}, *ITEMS[3:]]}},
        "page_size": 2,
    }
    empty_config: ClassVar[dict[str, Any] | None] = {"streams": {"items": {"records": []}}}
    pages_never_change = "the records are the config's list: nothing changes them while a read pages through"

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        more = [{"id": "8"}, {"id": "9"}]
        stream = self.config["streams"]["items"]
        # An instance attribute: the next build_source() sees the longer list; the class keeps its own.
        self.config = {**self.config, "streams": {"items": {**stream, "records": [*stream["records"], *more]}}}  # type: ignore[misc]
        return ["8", "9"]


class TestListSourceFullRefresh(SourceConformance):
    plugin = kit_plugin
    type_name = "list_source"
    stream = "items"
    config: ClassVar[dict[str, Any]] = {"streams": {"items": {"records": ITEMS, "incremental": False}}, "page_size": 3}
    empty_config: ClassVar[dict[str, Any] | None] = {"streams": {"items": {"records": [], "incremental": False}}}

    def add_more(self, respx_mock: respx.Router, tmp_path: Path) -> list[str]:
        stream = self.config["streams"]["items"]
        self.config = {**self.config, "streams": {"items": {**stream, "records": [*stream["records"], {"id": "8"}]}}}  # type: ignore[misc]
        return ["8"]


class TestCollectingDestination(DestinationConformance):
    plugin = kit_plugin
    type_name = "collect"

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str]:
        assert isinstance(destination, CollectingDestination)
        return destination.keys


class TestUpsertCollectingDestination(TestCollectingDestination):
    type_name = "collect_upsert"


# -- builtin transforms -------------------------------------------------------------------------

class TestNormalizeTransform(TransformConformance):
    """Two records pass (emails trimmed and lowercased), one with a bad email is rejected with a reason."""

    plugin = transforms
    type_name = "normalize"
    options: ClassVar[dict[str, Any]] = {"fields": {"email": "email"}}
    sample_records: ClassVar[list[Record]] = [
        *make_records(2),
        Record(stream="test.items", key="3", data={"id": "3", "email": "not an email"}),
    ]

    def test_normalizes_and_rejects(self, plugin_class: type) -> None:
        out, ctx = self._process(plugin_class, self.sample_records)
        assert [(r.key, r.data["email"]) for r in out] == [("1", "person1@example.com"), ("2", "person2@example.com")]
        assert [r.key for r in ctx.rejected] == ["3"]
