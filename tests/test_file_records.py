"""The file sources build records without validating them twice: the records are those validation makes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cdp_core.base import ConnectorContext, Stream
from cdp_core.builtins.files import CsvSource, CsvSourceConfig, JsonlSource, JsonlSourceConfig
from cdp_core.records import Record, RecordKind, Rejected, trusted_record

JSONL: list[dict[str, Any]] = [
    {"id": 1, "t": "2024-02-12T10:15:00+01:00", "email": ["a@x.com", "", None, 7], "c": {"id": 5, "phone": None}},
    {"id": "2", "t": 1700000000, "email": "b@x.com", "c": {"id": ""}},
    {"id": 3, "t": "2024-02-12", "email": "", "c": "not an object"},
    {"id": 4, "t": None},
    {"id": 5, "t": "", "email": []},
    {"id": 6, "t": "2024-02-12 10:15:00.5Z", "extra": {"nested": [1, {"x": None}]}},
]


def _stream(tmp_path: Path, file: str, content: bytes, **options: Any) -> Stream:
    (tmp_path / file).write_bytes(content)
    context = ConnectorContext(name="src", base_dir=tmp_path)
    streams = {"people": {"path": file, **options}}
    if file.endswith(".csv"):
        return CsvSource(CsvSourceConfig.model_validate({"streams": streams}), context).stream("people")
    return JsonlSource(JsonlSourceConfig.model_validate({"streams": streams}), context).stream("people")


def _read(stream: Stream) -> tuple[list[Record], list[Rejected]]:
    records: list[Record] = []
    rejects: list[Rejected] = []
    for page in stream.read(None):
        records += page.records
        rejects += page.rejects
    return records, rejects


def _same(record: Record, validated: Record) -> None:
    assert record == validated
    assert json.dumps(record.raw()) == json.dumps(validated.raw())  # the key order too
    assert repr(record.occurred_at) == repr(validated.occurred_at)  # the tzinfo pydantic gives, not another
    assert record.model_fields_set == validated.model_fields_set
    assert list(record.__dict__) == list(validated.__dict__)


@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_jsonl_records_are_the_records_validation_makes(tmp_path: Path, batch_size: int) -> None:
    content = "".join(json.dumps(row) + "\n" for row in JSONL).encode()
    stream = _stream(
        tmp_path, "p.jsonl", content, kind="order", timestamp_field="t", batch_size=batch_size,
        identifiers={"email": "email", "customer": "c.id", "phone": "c.phone"},
    )  # fmt: skip
    records, rejects = _read(stream)
    assert not rejects and [r.key for r in records] == ["1", "2", "3", "4", "5", "6"]
    for record, row in zip(records, JSONL, strict=True):
        validated = Record(
            stream="src.people", kind=RecordKind.order, key=record.key, data=row,
            identifiers=record.identifiers, occurred_at=row.get("t") or None,
        )  # fmt: skip
        _same(record, validated)
    assert records[0].identifiers == {"email": ["a@x.com", "7"], "customer": "5"}
    assert records[0].occurred_at == datetime(2024, 2, 12, 9, 15, tzinfo=UTC)


def test_csv_records_are_the_records_validation_makes(tmp_path: Path) -> None:
    content = b"id,region,email,t\n1,eu,a@x.com,2023-01-02T21:49:30.000Z\n2,us,,2023-06-19 05:51:00\n3,eu,c@x.com,\n"
    stream = _stream(tmp_path, "p.csv", content, primary_key=["id", "region"], timestamp_field="t", identifiers={"email": "email"})
    records, rejects = _read(stream)
    assert not rejects and [r.key for r in records] == ["1|eu", "2|us", "3|eu"]
    for record in records:
        validated = Record(
            stream="src.people", key=record.key, kind=RecordKind.profile, data=dict(record.data),
            identifiers=record.identifiers, occurred_at=record.data["t"] or None,
        )  # fmt: skip
        _same(record, validated)


def test_a_bad_timestamp_is_quarantined_with_the_models_reason_and_the_read_goes_on(tmp_path: Path) -> None:
    rows = [{"id": 1, "t": "2024-02-12"}, {"id": 2, "t": "yesterday"}, {"id": 3, "t": [1]}, {"id": 4, "t": 1700000000}]
    stream = _stream(tmp_path, "p.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode(), timestamp_field="t")
    records, rejects = _read(stream)
    assert [r.key for r in records] == ["1", "4"]
    assert [(r.reason, r.raw) for r in rejects] == [
        ("p.jsonl line 2: occurred_at: Input should be a valid datetime or date, input is too short", rows[1]),
        ("p.jsonl line 3: occurred_at: Input should be a valid datetime", rows[2]),
    ]


def test_trusted_record_is_the_validated_record() -> None:
    values: dict[str, Any] = {"stream": "s.x", "kind": RecordKind.event, "key": "k", "data": {"a": 1},
                              "identifiers": {"email": ["a@x.com", "b@x.com"]}, "occurred_at": datetime(2024, 1, 1, tzinfo=UTC)}  # fmt: skip
    _same(trusted_record(values), Record(**values))
    # fields not given take their defaults, each record its own (the factories are called per record)
    one, two = trusted_record({"stream": "s", "key": "1"}), trusted_record({"stream": "s", "key": "2"})
    _same(one, Record(stream="s", key="1"))
    one.data["x"] = 1
    one.identifiers["email"] = "a@x.com"
    assert two.data == {} and two.identifiers == {}
    one.deleted = True  # assignment marks the field set on that record alone
    assert "deleted" in one.model_fields_set and "deleted" not in two.model_fields_set
