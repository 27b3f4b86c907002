"""filter and derive: expressions from the config, compiled once, evaluated per record."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cdp_core.base import TransformContext
from cdp_core.records import Record, Rejected
from cdp_core.transforms.compute import Derive, DeriveConfig, Filter, FilterConfig


def rec(key: str = "1", **data: object) -> Record:
    return Record(stream="test.people", key=key, data=dict(data))


def run_filter(options: dict[str, object], *records: Record) -> tuple[list[Record], list[Rejected]]:
    ctx = TransformContext("filter")
    return Filter(FilterConfig.model_validate(options)).process(list(records), ctx), ctx.rejected


def run_derive(options: dict[str, object], *records: Record) -> tuple[list[Record], list[Rejected]]:
    ctx = TransformContext("derive")
    return Derive(DeriveConfig.model_validate(options)).process(list(records), ctx), ctx.rejected


def test_filter_keeps_true_drops_false_and_null() -> None:
    out, rejected = run_filter(
        {"where": "country == 'DE' and age >= 18"},
        rec("1", country="DE", age=30),
        rec("2", country="AT", age=30),
        rec("3", country="DE", age="17"),
        rec("4", country="DE"),
    )
    assert [r.key for r in out] == ["1"]
    assert rejected == []  # dropped, not rejected


def test_filter_evaluation_error_rejects_with_reason() -> None:
    out, rejected = run_filter({"where": "total > 1000"}, rec("1", total="n/a"), rec("2", total="1500"))
    assert [r.key for r in out] == ["2"]
    assert rejected[0].reason == "where 'total > 1000': cannot compare 'n/a' > 1000"
    assert rejected[0].key == "1"


def test_filter_as_of_pins_now() -> None:
    out, _ = run_filter(
        {"where": "days_since(last_order) <= 30", "as_of": "2025-01-31"},
        rec("1", last_order="2025-01-01"),
        rec("2", last_order="2024-12-31"),
    )
    assert [r.key for r in out] == ["1"]


def test_derive_fields_in_order() -> None:
    options = {
        "fields": {
            "full_name": "concat(first_name, ' ', last_name)",
            "is_vip": "total_spent > 1000 and orders >= 3",
            "label": "concat(full_name, ' (', str(is_vip), ')')",
            "address.country_lower": "lower(country)",
            "identifiers.crm_id": "concat('crm-', id)",
            "seen": "now()",
        },
        "as_of": "2025-01-01T10:00:00Z",
    }
    out, rejected = run_derive(
        options, rec(first_name="Zoë", last_name="Doe", total_spent="1500", orders=3, country="DE", id=7)
    )
    assert rejected == []
    data = out[0].data
    assert data["full_name"] == "Zoë Doe"
    assert data["is_vip"] is True
    assert data["label"] == "Zoë Doe (true)"
    assert data["address"] == {"country_lower": "de"}
    assert data["seen"] == "2025-01-01T10:00:00Z"  # JSON-safe text, not a datetime
    assert out[0].identifiers == {"crm_id": "crm-7"}


def test_derive_error_rejects_naming_the_field() -> None:
    out, rejected = run_derive({"fields": {"avg": "total / orders", "ok": "1"}}, rec(total=10, orders=0))
    assert out == []
    assert rejected[0].reason == "avg: division by zero"


def test_bad_expression_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ValidationError) as info:
        DeriveConfig.model_validate(
            {"fields": {"full_name": "concat(first_name, ' ', last_name", "x": "__import__('os')"}}
        )
    (error,) = info.value.errors(include_url=False)
    assert error["loc"] == ("fields",)
    assert error["msg"].startswith("Value error, full_name: syntax error at the end")
    assert "x: at column 1: unknown function '__import__'" in error["msg"]
    with pytest.raises(ValidationError) as info:
        FilterConfig.model_validate({"where": "a.__class__"})
    (error,) = info.value.errors(include_url=False)
    assert error["loc"] == ("where",)
    assert "names starting with '__' are not allowed" in error["msg"]


@pytest.mark.parametrize(
    ("model", "options", "message"),
    [
        (FilterConfig, {}, "where\n  Field required"),
        (FilterConfig, {"where": "a", "when": "b"}, "Extra inputs are not permitted"),
        (DeriveConfig, {"fields": {}}, "at least 1 item"),
        (DeriveConfig, {"fields": {"a..b": "1"}}, "empty part between dots"),
    ],
)
def test_other_bad_options(model: type[FilterConfig | DeriveConfig], options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        model.model_validate(options)
