"""validate: required fields, value types, kinds; every failure named in one reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cdp_core.base import TransformContext
from cdp_core.records import Record, RecordKind, Rejected
from cdp_core.transforms.validate import Validate, ValidateConfig


def rec(key: str = "1", kind: RecordKind = RecordKind.profile, **data: object) -> Record:
    return Record(stream="test.people", key=key, kind=kind, data=dict(data))


def run(options: dict[str, object], *records: Record) -> tuple[list[Record], list[Rejected]]:
    ctx = TransformContext("validate")
    return Validate(ValidateConfig.model_validate(options)).process(list(records), ctx), ctx.rejected


TYPES = {
    "age": "int",
    "total": "float",
    "email": "email",
    "signup": "date",
    "active": "bool",
    "at": "datetime",
    "tags": "list",
    "name": "str",
}


def test_valid_record_passes_unchanged() -> None:
    record = rec(
        email="a@b.de",
        age="42",
        total="9.99",
        signup="17.05.2024",
        active="yes",
        at="2024-05-17 10:00",
        tags=["x"],
        name="Ann",
    )
    out, rejected = run({"required": ["email"], "types": TYPES}, record)
    assert rejected == []
    assert out[0].data["age"] == "42"  # validated, not converted


def test_every_failing_field_is_named() -> None:
    record = rec(age="forty", total="cheap", email="nope", signup="someday", active="maybe", tags="x", name=True)
    _, rejected = run({"required": ["email", "id"], "types": TYPES}, record)
    assert rejected[0].reason == (
        "id: required; age: expected int, got 'forty'; total: expected float, got 'cheap'; "
        "email: not a valid email address: 'nope'; signup: not a recognizable date/time: 'someday'; "
        "active: expected bool (true/false, yes/no, 1/0), got 'maybe'; tags: expected list, got 'x'; "
        "name: expected str, got True"
    )


def test_blank_counts_as_missing_for_required_and_skips_type_checks() -> None:
    out, rejected = run({"required": ["email"], "types": {"age": "int"}}, rec(email="  ", age=""))
    assert out == [] and rejected[0].reason == "email: required"
    out, rejected = run({"types": {"age": "int"}}, rec(age=""), rec("2", age=None), rec("3"))
    assert len(out) == 3 and rejected == []


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("int", 3.0, True),
        ("int", "3.5", False),
        ("int", True, False),
        ("int", " 12 ", True),
        ("float", "1e3", True),
        ("float", "inf", False),
        ("float", False, False),
        ("bool", 1, True),
        ("bool", 2, False),
        ("bool", "FALSE", True),
        ("str", 42, True),
        ("dict", {"a": 1}, True),
        ("dict", [], False),
    ],
)
def test_type_rules(kind: str, value: object, ok: bool) -> None:
    out, _ = run({"types": {"v": kind}}, rec(v=value))
    assert bool(out) is ok


def test_coerce_converts_only_records_that_pass() -> None:
    options = {"types": {"age": "int", "active": "bool", "signup": "date", "email": "email"}, "coerce": True}
    out, _ = run(options, rec(age="42", active="no", signup="17.05.2024", email=" A@B.DE "))
    assert out[0].data == {"age": 42, "active": False, "signup": "2024-05-17", "email": "a@b.de"}
    _, rejected = run(options, rec(age="42", active="perhaps"))
    assert rejected[0].raw["data"] == {"age": "42", "active": "perhaps"}  # quarantine holds the input


def test_kinds_limits_what_is_validated() -> None:
    out, rejected = run({"required": ["email"], "kinds": ["profile"]}, rec("1"), rec("2", kind=RecordKind.order))
    assert [r.key for r in out] == ["2"] and rejected[0].key == "1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "set 'required' and/or 'types'"),
        ({"types": {"age": "integer"}}, "Input should be 'str', 'int', 'float', 'bool', 'email', 'date'"),
        ({"required": ["a"], "kinds": ["person"]}, "Input should be 'profile', 'event', 'order'"),
        ({"required": ["a"], "kinds": []}, "at least 1 item"),
        ({"required": ["a"], "strict": True}, "Extra inputs are not permitted"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ValidateConfig.model_validate(options)
