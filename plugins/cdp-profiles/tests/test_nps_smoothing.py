"""Smoothing of the NPS trend: hand-computed moving averages and exponential smoothing, and the CLI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from test_nps import ANSWERS, PROFILES, run, store

from cdp_profiles.nps import NpsError, NpsFigure, NpsPeriod
from cdp_profiles.nps_smoothing import Smoothing, parse_smoothing, smooth


def periods(*counts: tuple[int, int, int]) -> list[NpsPeriod]:
    return [NpsPeriod(f"p{i}", date(2024, 1, 1), NpsFigure(*c)) for i, c in enumerate(counts)]


def values(trend: list[NpsPeriod], spec: str) -> list[float | None]:
    return [None if s.nps is None else round(s.nps, 2) for s in smooth(trend, parse_smoothing(spec))]


def test_moving_average_pools_the_counts_of_the_window() -> None:
    # (promoters, passives, detractors) per period. Pooled, not the mean of the NPS values:
    # periods 1+2 of the first trend: (2+0, 1+0, 1+3) = n 7, NPS (2 - 4) / 7 = -28.57, where the mean of
    # the two NPS values (25 and -100) would be -37.5.
    trend = periods((2, 1, 1), (0, 0, 3), (5, 0, 0))
    assert values(trend, "ma:2") == [25.0, -28.57, 25.0]  # (0+5, 0, 3+0) = n 8: 2 / 8
    assert values(trend, "ma:3") == [25.0, -28.57, 25.0]  # (7, 1, 4) = n 12: 3 / 12
    # A period without answers: the window pools what is left; a window without any answer is None.
    gaps = periods((2, 1, 1), (0, 0, 0), (0, 0, 0), (1, 0, 0))
    assert values(gaps, "ma:2") == [25.0, 25.0, None, 100.0]
    assert [s.n for s in smooth(gaps, Smoothing("ma", window=2))] == [4, 4, 0, 1]


def test_exponential_smoothing_of_the_counts() -> None:
    # alpha 0.5: S_t = c_t + 0.5 * S_(t-1) per count.
    # t0 (2, 1, 1) -> 25; t1 (0 + 1, 0 + 0.5, 3 + 0.5) = n 5 -> (1 - 3.5) / 5 = -50;
    # t2 (5 + 0.5, 0.25, 1.75) = n 7.5 -> (5.5 - 1.75) / 7.5 = 50.
    trend = periods((2, 1, 1), (0, 0, 3), (5, 0, 0))
    assert values(trend, "ewma:0.5") == [25.0, -50.0, 50.0]
    assert values(trend, "ewma:1") == [25.0, -100.0, 100.0]  # alpha 1: no smoothing
    # Periods without answers carry the last value (every count decays alike); then the new answers weigh in:
    # t3 (1 + 0.125 * 2, 0.125, 0.125) = n 1.5 -> (1.25 - 0.125) / 1.5 = 75.
    gaps = periods((2, 1, 1), (0, 0, 0), (0, 0, 0), (1, 0, 0))
    assert values(gaps, "ewma:0.5") == [25.0, 25.0, 25.0, 75.0]
    assert values(periods((0, 0, 0), (1, 0, 0)), "ewma:0.3") == [None, 100.0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ma:1", "from 2 to 104"),
        ("ma:2.5", "whole number"),
        ("ma:", "unknown smoothing"),
        ("ewma:0", "above 0 and at most 1"),
        ("ewma:1.5", "above 0 and at most 1"),
        ("ewma:nan", "above 0 and at most 1"),
        ("ewma:x", "above 0 and at most 1"),
        ("median:3", "unknown smoothing"),
        ("3", "unknown smoothing"),
    ],
)
def test_bad_specs_say_what(spec: str, message: str) -> None:
    with pytest.raises(NpsError, match=message):
        parse_smoothing(spec)


def test_specs() -> None:
    assert parse_smoothing("ma:3") == Smoothing("ma", window=3)
    assert parse_smoothing(" EWMA:0.25 ") == Smoothing("ewma", alpha=0.25)
    assert parse_smoothing("ewma:0.25").spec == "ewma:0.25"


@pytest.fixture
def engine(store_url: str) -> Engine:
    return store(store_url, PROFILES + ANSWERS)


def test_cli_smoothed_trend(engine: Engine, store_url: str, tmp_path: Path) -> None:
    # Months of the test_nps answers: 2024-01 (2, 1, 1) = 25, 2024-02 (1, 1, 1) = 0, 2024-03 (2, 0, 1) = 33.33.
    # ma:2: 25; (3, 2, 2) = 2 / 7 = 14.29; (3, 1, 2) = 1 / 6 = 16.67.
    code, out, err = run(tmp_path, store_url, "--json", "--period", "month", "--smooth", "ma:2")
    assert code == 0, err
    data = json.loads(out)
    assert data["smoothing"] == {"method": "ma", "window": 2, "alpha": None, "spec": "ma:2"}
    assert [(p["period"], p["nps"], p["smoothed_nps"]) for p in data["trend"]] == [
        ("2024-01", 25.0, 25.0),
        ("2024-02", 0.0, 14.29),
        ("2024-03", 33.33, 16.67),
    ]
    assert [p["smoothed_n"] for p in data["trend"]] == [4, 7, 6]
    # ewma:0.5: 25; (2, 1.5, 1.5) = 0.5 / 5 = 10; (3, 0.75, 1.75) = 1.25 / 5.5 = 22.73.
    code, out, err = run(tmp_path, store_url, "--json", "--period", "month", "--smooth", "ewma:0.5")
    assert [p["smoothed_nps"] for p in json.loads(out)["trend"]] == [25.0, 10.0, 22.73]
    code, out, err = run(tmp_path, store_url, "--period", "month", "--smooth", "ma:2")
    assert code == 0 and "smoothed" in out and "+14.3" in out and "+16.7" in out
    # Without smoothing the trend has no smoothed values.
    code, out, err = run(tmp_path, store_url, "--json", "--period", "month")
    assert "smoothed_nps" not in json.loads(out)["trend"][0] and json.loads(out)["smoothing"] is None


def test_cli_smoothing_errors(engine: Engine, store_url: str, tmp_path: Path) -> None:
    code, _, err = run(tmp_path, store_url, "--period", "month", "--smooth", "ma:1")
    assert code == 2 and "--smooth: ma:1: the window is a whole number of periods from 2 to 104" in err
    code, _, err = run(tmp_path, store_url, "--period", "week", "--smooth", "avg:3")
    assert code == 2 and "unknown smoothing 'avg:3'" in err
    code, _, err = run(tmp_path, store_url, "--smooth", "ma:3")
    assert code == 2 and "add --period" in err
