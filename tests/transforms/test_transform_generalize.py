"""generalize (age bands, zip prefixes, date periods) and discretize (numeric bins)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cdp_core.base import TransformContext
from cdp_core.records import Record, Rejected
from cdp_core.transforms.generalize import Discretize, DiscretizeConfig, Generalize, GeneralizeConfig, age_labels


def rec(key: str = "1", **data: object) -> Record:
    return Record(stream="test.people", key=key, data=dict(data))


def generalize(options: dict[str, object], *records: Record) -> tuple[list[Record], list[Rejected]]:
    ctx = TransformContext("generalize")
    return Generalize(GeneralizeConfig.model_validate(options)).process(list(records), ctx), ctx.rejected


def discretize(options: dict[str, object], *records: Record) -> tuple[list[Record], list[Rejected]]:
    ctx = TransformContext("discretize")
    return Discretize(DiscretizeConfig.model_validate(options)).process(list(records), ctx), ctx.rejected


AGE = {"kind": "age", "field": "birthday", "target": "age_band", "bands": [18, 25, 35, 45, 55, 65]}


def test_age_labels() -> None:
    assert age_labels([18, 25, 35, 45, 55, 65]) == ["<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]


@pytest.mark.parametrize(
    ("birthday", "band"),
    [
        ("2000-05-17", "25-34"),  # 25 on the day
        ("2000-05-18", "18-24"),  # 25 tomorrow
        ("17.05.2010", "<18"),
        ("1950-01-01", "65+"),
        ("1960-05-18T08:00:00Z", "55-64"),
    ],
)
def test_age_band_at_as_of(birthday: str, band: str) -> None:
    out, rejected = generalize({"rules": [AGE], "as_of": "2025-05-17"}, rec(birthday=birthday))
    assert rejected == []
    assert out[0].data == {"birthday": birthday, "age_band": band}


def test_drop_source_removes_the_birthday() -> None:
    out, _ = generalize({"rules": [AGE | {"drop_source": True}], "as_of": "2025-05-17"}, rec(birthday="1990-01-01"))
    assert out[0].data == {"age_band": "35-44"}


def test_zip_prefix_and_date_periods_in_place() -> None:
    rules = [
        {"kind": "zip", "field": "zip", "digits": 2},
        {"kind": "date", "field": "signup", "to": "month"},
        {"kind": "date", "field": "a", "to": "year"},
        {"kind": "date", "field": "b", "to": "week"},
        {"kind": "date", "field": "c", "to": "quarter"},
        {"kind": "date", "field": "d", "to": "day"},
    ]
    stamp = "2024-05-17T09:30:00Z"
    out, rejected = generalize({"rules": rules}, rec(zip="10115", signup=stamp, a=stamp, b=stamp, c=stamp, d=stamp))
    assert rejected == []
    assert out[0].data == {
        "zip": "10",
        "signup": "2024-05",
        "a": "2024",
        "b": "2024-W20",
        "c": "2024-Q2",
        "d": "2024-05-17",
    }


def test_zip_number_and_spaces() -> None:
    out, _ = generalize(
        {"rules": [{"kind": "zip", "field": "zip", "digits": 3}]}, rec("1", zip=80331), rec("2", zip="SW1A 1AA")
    )
    assert [r.data["zip"] for r in out] == ["803", "SW1"]


def test_blank_values_are_left_alone() -> None:
    out, rejected = generalize({"rules": [AGE]}, rec(birthday=""), rec("2"))
    assert rejected == [] and out[0].data == {"birthday": ""} and out[1].data == {}


def test_bad_values_reject_or_null_never_pass_through() -> None:
    _, rejected = generalize(
        {"rules": [AGE], "as_of": "2025-01-01"}, rec(birthday="soon"), rec("2", birthday="2030-01-01")
    )
    assert [r.reason for r in rejected] == [
        "birthday: not a recognizable date/time: 'soon'",
        "birthday: birth date 2030-01-01 is after 2025-01-01",
    ]
    out, rejected = generalize({"rules": [AGE], "on_invalid": "null"}, rec(birthday="soon"))
    assert rejected == [] and out[0].data == {"birthday": "soon", "age_band": None}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"kind": "blur", "field": "x"}], "does not match any of the expected tags: 'age', 'zip', 'date'"),
        ([{"kind": "zip", "field": "zip", "digits": 0}], "greater than or equal to 1"),
        (
            [{"kind": "date", "field": "d", "to": "decade"}],
            "Input should be 'year', 'quarter', 'month', 'week' or 'day'",
        ),
        ([AGE | {"bands": [30, 20]}], "bands must be strictly increasing"),
        ([{"kind": "age", "field": "b", "drop_source": True}], "drop_source needs a target"),
        ([{"kind": "zip", "field": "zip", "digits": 2, "keep": 1}], "Extra inputs are not permitted"),
        ([], "at least 1 item"),
    ],
)
def test_generalize_bad_options(rules: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GeneralizeConfig.model_validate({"rules": rules})


# -- discretize -----------------------------------------------------------------------------------


def test_discretize_default_labels_lower_bound_inclusive() -> None:
    values = [-5, 0, 49.99, 50, "120", 500, 1e6]
    out, rejected = discretize(
        {"field": "spent", "bins": [0, 50, 100, 500], "target": "spent_band"},
        *(rec(str(i), spent=v) for i, v in enumerate(values)),
    )
    assert rejected == []
    assert [r.data["spent_band"] for r in out] == ["<0", "0-50", "0-50", "50-100", "100-500", "500+", "500+"]


def test_discretize_custom_labels_in_place_and_blank_untouched() -> None:
    options = {"field": "score", "bins": [7, 9], "labels": ["detractor", "passive", "promoter"]}
    out, _ = discretize(
        options, rec("1", score=6), rec("2", score=8), rec("3", score="10"), rec("4", score=""), rec("5")
    )
    assert [r.data.get("score", "absent") for r in out] == ["detractor", "passive", "promoter", "", "absent"]


def test_discretize_fractional_bins_label() -> None:
    out, _ = discretize({"field": "x", "bins": [0.5, 1.5]}, rec(x=1))
    assert out[0].data["x"] == "0.5-1.5"


@pytest.mark.parametrize("value", ["lots", True, [1], "nan"])
def test_discretize_rejects_non_numbers(value: object) -> None:
    out, rejected = discretize({"field": "spent", "bins": [0, 50]}, rec(spent=value))
    assert out == []
    assert rejected[0].reason == f"spent: not a number: {value!r}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"field": "x", "bins": []}, "at least 1 item"),
        ({"field": "x", "bins": [5, 5]}, "bins must be strictly increasing"),
        ({"field": "x", "bins": [0, 10], "labels": ["a", "b"]}, "2 bins need 3 labels"),
        ({"field": "x", "bins": ["ten"]}, "Input should be a valid number"),
        ({"bins": [1]}, "field\n  Field required"),
    ],
)
def test_discretize_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DiscretizeConfig.model_validate(options)
