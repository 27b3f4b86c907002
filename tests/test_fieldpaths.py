"""fieldpaths.lookup: one rule for dotted field paths, in transforms, file sources and HTTP bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from cdp_core.base import ConnectorContext
from cdp_core.builtins.files import JsonlSource, JsonlSourceConfig
from cdp_core.fieldpaths import lookup
from cdp_core.http import json_path
from cdp_core.records import Record
from cdp_core.transforms.fields import MISSING, FieldPath

BOTH = {"utm.source": "flat", "utm": {"source": "nested", "medium.name": "flat inside"}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("utm.source", "flat"),  # an exact flat key wins over the nested reading
        ("utm.medium.name", "flat inside"),  # at every level
        ("utm", BOTH["utm"]),
        ("utm.missing", "absent"),
        ("utm.source.deeper", "absent"),  # the flat key's value is a string: nothing inside
    ],
)
def test_a_flat_key_with_a_dot_wins_then_the_nested_reading(path: str, expected: Any) -> None:
    assert lookup(BOTH, path, "absent") == expected


def test_nested_when_there_is_no_flat_key() -> None:
    assert lookup({"utm": {"source": "nested"}}, "utm.source") == "nested"


def test_list_indexes_count_from_either_end() -> None:
    data = {"items": [{"sku": "a"}, {"sku": "b"}]}
    assert lookup(data, "items.0.sku") == "a"
    assert lookup(data, "items.-1.sku") == "b"
    assert lookup(data, "items.2.sku", "absent") == "absent"
    assert lookup(data, "items.x", "absent") == "absent"


def test_attributes_only_when_asked() -> None:
    class Next(BaseModel):
        after: str

    class Body(BaseModel):
        next: Next

    body = Body(next=Next(after="c2"))
    assert lookup(body, "next.after") is None
    assert json_path(body, "next.after") == "c2"
    assert json_path({"name": "x"}, "name.upper") is None  # never a string's method


def test_field_path_and_json_path_read_the_flat_key_too() -> None:
    record = Record(stream="s.t", key="1", data=json.loads(json.dumps(BOTH)))
    assert FieldPath("utm.source").get(record) == "flat"
    assert FieldPath("utm.medium.name").get(record) == "flat inside"
    assert FieldPath("utm.nope").get(record) is MISSING
    assert json_path(BOTH, "utm.source") == "flat"


def test_a_file_source_reads_its_key_and_identifiers_by_the_same_rule(tmp_path: Path) -> None:
    rows = [{"id.crm": "1", "id": {"crm": "ignored"}, "contact": {"email": "a@example.com"}}]
    (tmp_path / "people.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = JsonlSourceConfig.model_validate(
        {
            "streams": {
                "people": {
                    "path": "people.jsonl",
                    "primary_key": "id.crm",
                    "identifiers": {"email": "contact.email"},
                }
            }
        }
    )
    source = JsonlSource(config, ConnectorContext(name="files", base_dir=tmp_path))
    (stream,) = source.streams()
    (record,) = [r for page in stream.read(None) for r in page.records]
    assert (record.key, record.identifiers) == ("1", {"email": "a@example.com"})
