"""Tombstones (``Record.deleted``) through the runner: a destination that does not handle deletions
never sees one (counted held back on its node); the JSON lines destination writes a ``deleted`` line;
``missing_ok`` is taken on a tombstone only."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from cdp_core import Register, hookimpl
from cdp_core.base import SKIPPED_DELETION, Page, Source, Stream
from cdp_core.plugins import load_plugins
from cdp_core.records import JsonValue, Record
from cdp_core.testing import run_graph


class _Contacts(Stream):
    name = "contacts"
    cursor_field = None

    def __init__(self, connector: str) -> None:
        self.connector = connector

    def read(self, cursor: JsonValue) -> Iterator[Page]:
        stream = f"{self.connector}.contacts"
        yield Page([Record(stream=stream, key="1", data={"name": "Ada"}, identifiers={"email": ["a@x.de", "b@x.de"]}),
                    Record(stream=stream, key="2", deleted=True),
                    Record(stream=stream, key="3", deleted=True, missing_ok=True)], None)  # fmt: skip


class Tombs(Source):
    def streams(self) -> Sequence[Stream]:
        return [_Contacts(self.context.name)]


class TombsPlugin:
    @hookimpl
    def cdp_register_sources(self, register: Register) -> None:
        register("tombs", Tombs)


GRAPH = """
[connectors.vendor]
type = "tombs"
[connectors.lines]
type = "jsonl_file"
path = "out/lines.jsonl"
[connectors.table]
type = "csv_file"
path = "out/table.csv"
[syncs.main.nodes.contacts]
source = "vendor.contacts"
[syncs.main.nodes.lines]
destination = "lines"
inputs = ["contacts"]
[syncs.main.nodes.table]
destination = "table"
inputs = ["contacts"]
"""


def test_tombstones_are_written_by_the_jsonl_destination_and_skipped_by_the_csv_one(tmp_path: Path) -> None:
    plugins = load_plugins(entry_points=False, extra=[("tombs", TombsPlugin())])
    run = run_graph(tmp_path, GRAPH, plugins)
    assert run.status == "succeeded", run.error
    first, second, third = [json.loads(line) for line in (tmp_path / "out/lines.jsonl").read_text().splitlines()]
    assert first["identifiers"] == {"email": ["a@x.de", "b@x.de"]} and "deleted" not in first
    assert second == {"stream": "vendor.contacts", "kind": "profile", "key": "2", "deleted": True, "occurred_at": None}
    assert third == {**second, "key": "3", "missing_ok": True}
    with (tmp_path / "out/table.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 1, "the tombstone is no row"
    table = run.nodes["table"]
    assert table.held_back == {SKIPPED_DELETION: 2} and table.rejected == 0
    assert run.nodes["lines"].held_back == {}


def test_the_conformance_suite_names_malformed_identifier_lists() -> None:
    from cdp_core.testing.conformance import identifiers_problem

    def problem(**identifiers: object) -> str | None:
        return identifiers_problem(Record.model_construct(stream="s", key="k", identifiers=identifiers))

    assert problem(email="a@x.de", phone=["+4930123", "+4930124"]) is None
    assert problem(email=["a@x.de", "A@X.de"]) == "identifiers.email: ['a@x.de', 'A@X.de'] repeats a value"
    assert problem(email=["a@x.de", ""]) == "identifiers.email: '' is no value (an empty text, or not a text)"
    assert problem(email=[" a@x.de"]) == "identifiers.email: ' a@x.de' has blanks around it"


def test_missing_ok_is_only_for_tombstones_and_survives_a_copy() -> None:
    only_tombstones = r"record shop\.consents\|7:sms: missing_ok is only meaningful on a tombstone"
    with pytest.raises(ValidationError, match=only_tombstones):
        Record(stream="shop.consents", key="7:sms", missing_ok=True)
    flagged = Record(stream="shop.consents", key="7:sms", deleted=True, missing_ok=True)
    assert Record.model_validate(flagged.raw()).missing_ok and flagged.model_copy(deep=True).missing_ok
    assert not Record(stream="s", key="k", deleted=True).missing_ok and not Record(stream="s", key="k").missing_ok
