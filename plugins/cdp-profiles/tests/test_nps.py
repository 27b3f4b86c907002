"""NPS: hand-computed figures on SQLite and PostgreSQL, through the real profile writer and the CLI."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cdp_core.cli import build_app
from cdp_core.records import Record, RecordKind
from cdp_core.store import Checkpoint, make_engine
from sqlalchemy import Connection, Engine, text
from sqlmodel import SQLModel
from typer.testing import CliRunner

from cdp_profiles import nps
from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store.profiles import ProfileWriter
from cdp_profiles.store.schema import ensure_schema

TOL = 0.01  # points


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def profile(key: str, email: str, **traits: object) -> Record:
    return Record(
        stream="crm", kind=RecordKind.profile, key=key, data=traits, identifiers={"email": email}, occurred_at=at(1, 1)
    )


def answer(key: str, email: str, score: int, when: datetime, survey: str) -> Record:
    data = {"score": score, "survey": survey, "comment": f"answer {key}"}
    return Record(
        stream="typeform",
        kind=RecordKind.nps_response,
        key=key,
        data=data,
        identifiers={"email": email},
        occurred_at=when,
    )


# Four people with a city, Eva with a profile but no city, Frank with no profile record at all.
PROFILES = [
    profile("1", "anna@example.de", city="Berlin"),
    profile("2", "ben@example.de", city="Berlin"),
    profile("3", "cara@example.de", city="Hamburg"),
    profile("4", "dave@example.de", city="Hamburg"),
    profile("5", "eva@example.de", plan="pro"),
]
ANSWERS = [
    answer("a1", "anna@example.de", 10, at(1, 10), "s1"),
    answer("b1", "ben@example.de", 9, at(1, 15), "s1"),
    answer("c1", "cara@example.de", 3, at(1, 20), "s1"),
    answer("d1", "dave@example.de", 7, at(1, 25), "s1"),
    answer("a2", "anna@example.de", 6, at(2, 5), "s2"),
    answer("e1", "eva@example.de", 9, at(2, 10, 18, 30), "s2"),
    answer("f1", "frank@example.de", 8, at(2, 12), "s2"),
    answer("c2", "cara@example.de", 10, at(3, 3), "s2"),
    answer("d2", "dave@example.de", 0, at(3, 15), "s2"),
    answer("e2", "eva@example.de", 10, at(3, 20), "s2"),
]


def store(url: str, records: list[Record]) -> Engine:
    engine = make_engine(url)
    ensure_schema(engine)
    checkpoint = Checkpoint(graph="t", run_id="r")
    ProfileWriter(engine, IdentityConfig()).write(records, checkpoint)
    assert not checkpoint.rejected, checkpoint.rejected
    return engine


def check(figure: nps.NpsFigure, counts: tuple[int, int, int], score: float, margin: float) -> None:
    assert (figure.promoters, figure.passives, figure.detractors) == counts
    assert figure.n == sum(counts)
    assert figure.nps == pytest.approx(score, abs=TOL)
    assert figure.margin_of_error == pytest.approx(margin, abs=TOL)


@pytest.fixture
def engine(store_url: str) -> Engine:
    return store(store_url, PROFILES + ANSWERS)


def test_category() -> None:
    assert [nps.category(s) for s in (0, 6, 7, 8, 9, 10)] == ["detractor"] * 2 + ["passive"] * 2 + ["promoter"] * 2
    for bad in (-1, 11, 7.5, True):
        with pytest.raises(ValueError):
            nps.category(bad)  # type: ignore[arg-type]


def test_summary_of_every_answer(engine: Engine) -> None:
    # Scores 10 9 3 7 6 9 8 10 0 10: promoters 10 9 9 10 10 = 5, passives 7 8 = 2, detractors 3 6 0 = 3, n = 10.
    # NPS = (5 - 3) / 10 * 100 = 20.0. Adjusted Wald (docs/nps.md): n' = 13, p' = 5.75 / 13, d' = 3.75 / 13,
    # p' - d' = 2 / 13 = 0.15385; var = 9.5 / 13 - (2 / 13)^2 = 0.70710; half = 1.96 * sqrt(0.70710 / 13) = 0.45712
    # -> interval [-30.33, 61.10], margin 45.71
    figure = nps.summary(engine)
    check(figure, (5, 2, 3), 20.0, 45.71)
    assert figure.interval == pytest.approx((-30.33, 61.10), abs=TOL)
    assert figure.pct_promoters == pytest.approx(50.0) and figure.pct_detractors == pytest.approx(30.0)
    assert figure.low_n


def test_by_trait(engine: Engine) -> None:
    groups = {g.value: g.figure for g in nps.by_trait(engine, "city")}
    assert set(groups) == {"Berlin", "Hamburg", None}
    # Berlin: Anna 10 and 6, Ben 9 -> 2 promoters, 1 detractor, n = 3; NPS = (2 - 1) / 3 * 100 = 33.33;
    # n' = 6, p' = 2.75 / 6, d' = 1.75 / 6: centre 1/6, var = 4.5/6 - 1/36 = 0.72222, half = 1.96 * sqrt(0.72222 / 6)
    # = 0.68001 -> [-51.33, 84.67], margin 68.00 (the plain Wald margin was 106.69, wider than the scale allows)
    check(groups["Berlin"], (2, 0, 1), 33.33, 68.00)
    # Hamburg: Cara 3 and 10, Dave 7 and 0 -> 1 promoter, 1 passive, 2 detractors, n = 4; NPS = (1 - 2) / 4 = -25.0;
    # n' = 7, p' = 1.75 / 7 = 0.25, d' = 2.75 / 7: centre -1/7, var = 4.5/7 - 1/49 = 0.62245,
    # half = 1.96 * sqrt(0.62245 / 7) = 0.58447 -> [-72.73, 44.16], margin 58.45
    check(groups["Hamburg"], (1, 1, 2), -25.0, 58.45)
    # No city: Eva 9 and 10 (profile without city), Frank 8 (no profile record) -> 2 promoters, 1 passive, n = 3;
    # NPS = 2 / 3 * 100 = 66.67; n' = 6, p' = 2.75 / 6, d' = 0.75 / 6: centre 1/3, var = 3.5/6 - 1/9 = 0.47222,
    # half = 1.96 * sqrt(0.47222 / 6) = 0.54986 -> [-21.65, 88.32], margin 54.99
    check(groups[None], (2, 1, 0), 66.67, 54.99)
    ordered = nps.by_trait(engine, "city")
    assert [g.label for g in ordered] == ["Hamburg", "Berlin", "(none)"]  # largest first, no value last


def test_trend_by_month_and_week(engine: Engine) -> None:
    months = nps.trend(engine, "month")
    assert [p.period for p in months] == ["2024-01", "2024-02", "2024-03"]
    # January: 10 9 3 7 -> 2 promoters, 1 passive, 1 detractor; NPS = (2 - 1) / 4 * 100 = 25.0;
    # Hamburg mirrored (n' = 7, centre +1/7): margin 58.45
    check(months[0].figure, (2, 1, 1), 25.0, 58.45)
    # February: 6 9 8 -> 1 / 1 / 1; NPS = 0.0; n' = 6, p' = d' = 1.75 / 6: var = 3.5 / 6 = 0.58333,
    # half = 1.96 * sqrt(0.58333 / 6) = 0.61114 -> margin 61.11
    check(months[1].figure, (1, 1, 1), 0.0, 61.11)
    # March: 10 0 10 -> 2 promoters, 1 detractor; NPS = 33.33, margin as for Berlin: 68.00
    check(months[2].figure, (2, 0, 1), 33.33, 68.00)
    weeks = nps.trend(engine, "week")
    # 2024-01-10 is in ISO week 2, 2024-03-20 in week 12; empty weeks in between are kept with n = 0.
    assert [p.period for p in weeks] == [f"2024-W{w:02d}" for w in range(2, 13)]
    assert weeks[0].start == date(2024, 1, 8)
    assert sum(p.figure.n for p in weeks) == 10
    # W03 (Jan 15-21): Ben 9, Cara 3 -> 1 promoter, 1 detractor, NPS 0; W05 (Jan 29 - Feb 4): no answers.
    assert weeks[1].period == "2024-W03" and (weeks[1].figure.n, weeks[1].figure.nps) == (2, 0.0)
    assert weeks[3].period == "2024-W05" and (weeks[3].figure.n, weeks[3].figure.nps) == (0, None)


def test_filters_and_latest_per_person(engine: Engine) -> None:
    # Latest answer per person: Anna 6, Ben 9, Cara 10, Dave 0, Eva 10, Frank 8 -> 3 promoters, 1 passive,
    # 2 detractors; NPS = (3 - 2) / 6 * 100 = 16.67; n' = 9, p' = 3.75 / 9, d' = 2.75 / 9: centre 1/9,
    # var = 6.5/9 - 1/81 = 0.70988, half = 1.96 * sqrt(0.70988 / 9) = 0.55046 -> margin 55.05
    check(nps.summary(engine, latest_per_person=True), (3, 1, 2), 16.67, 55.05)
    latest_city = {g.value: g.figure.n for g in nps.by_trait(engine, "city", latest_per_person=True)}
    assert latest_city == {"Berlin": 2, "Hamburg": 2, None: 2}
    # Survey s1 is January: 25.0 +- 58.45 (see the monthly trend).
    check(nps.summary(engine, survey="s1"), (2, 1, 1), 25.0, 58.45)
    # A date `until` covers the whole day: Feb 1 - Feb 10 holds Anna 6 and Eva 9 (at 18:30) -> NPS 0;
    # n' = 5, p' = d' = 1.75 / 5 = 0.35: var = 0.7, half = 1.96 * sqrt(0.7 / 5) = 0.73336 -> margin 73.34
    # (the plain Wald margin was 138.59)
    check(nps.summary(engine, since=date(2024, 2, 1), until=date(2024, 2, 10)), (1, 0, 1), 0.0, 73.34)
    assert nps.summary(engine, until=datetime(2024, 2, 10, 18, 0, tzinfo=UTC), since=date(2024, 2, 1)).n == 1
    assert nps.summary(engine, survey="nope").nps is None


def test_by_trait_follows_merged_profiles(store_url: str) -> None:
    # The answer's person (by shop customer id) and the Köln profile (by email) become one when a record carries both.
    records = [
        Record(
            stream="typeform",
            kind=RecordKind.nps_response,
            key="g1",
            data={"score": 4},
            identifiers={"shopify_customer_id": "4711"},
            occurred_at=at(4, 1),
        ),
        profile("7", "greta@example.de", city="Köln"),
    ]
    engine = store(store_url, records)
    assert [g.value for g in nps.by_trait(engine, "city")] == [None]
    link = Record(
        stream="crm",
        kind=RecordKind.profile,
        key="8",
        data={},
        identifiers={"email": "greta@example.de", "shopify_customer_id": "4711"},
        occurred_at=at(4, 2),
    )
    ProfileWriter(engine, IdentityConfig()).write([link], Checkpoint(graph="t", run_id="r2"))
    with engine.connect() as conn:
        merged = conn.execute(text("SELECT count(*) FROM profiles WHERE merged_into IS NOT NULL")).scalar()
    assert merged == 1
    assert [(g.value, g.figure.n) for g in nps.by_trait(engine, "city")] == [("Köln", 1)]


KEY = "2024-01-01T00:00:00.000000|crm|1"  # the deciding record's sort key (TIME|STREAM|KEY)


def traits(values: dict[str, object], **exact: str) -> dict[str, object]:
    """profiles.traits and profiles.trait_sources as the writer makes them (trait_sources is never read here)."""
    sources: dict[str, object] = {"r": [KEY], "n": dict.fromkeys(values, 0)}
    if exact:
        sources["x"] = exact  # the writer's exact sum of an accumulated number
    return {"traits": values, "trait_sources": sources}


def test_by_trait_reads_the_profile_traits(store_url: str) -> None:
    """Traits written straight into profiles.traits: every JSON type, odd names, merged profiles."""
    engine = make_engine(store_url)
    ensure_schema(engine)
    rows: dict[str, dict[str, object]] = {
        "p1": traits({"city": "Berlin", "vip": True, "ltv": 0.1, "tags": ["a", "b"], 'say "hi"': "yes", "a.b c": 5,
                      "visits": 12}, visits="12"),
        "p2": traits({"city": "Berlin", "vip": 1, "ltv": 3.141592653589793, 'say "hi"': "no", "a.b c": 5}),
        "p3": traits({"city": None, "vip": False}),  # a null value: the group without a value
        "p4": traits({}),  # no traits (but tags, set below)
        "p5": traits({"city": "Wien", "vip": False}),  # merged into p1: its old traits do not count
    }  # fmt: skip
    scores = {"p1": 10, "p2": 9, "p3": 3, "p4": 7, "p5": 0}
    profiles, sets, index, answers = (
        SQLModel.metadata.tables[t] for t in ("profiles", "id_sets", "record_index", "nps_responses")
    )
    with engine.begin() as conn:
        conn.execute(
            profiles.insert(),
            [
                {"id": p, "founder": f"s{p}", "sort_key": "k", "created_at": at(1, 1), "updated_at": at(1, 1),
                 "merged_into": "p1" if p == "p5" else None, **columns}
                for p, columns in rows.items()
            ],
        )  # fmt: skip
        conn.execute(
            sets.insert(), [{"id": f"s{p}", "identifiers": [], "sort_key": "k", "profile_id": p} for p in rows]
        )
        conn.execute(
            index.insert(),
            [
                {"stream": "nps", "key": p, "kind": "nps_response", "set_id": f"s{p}", "updated_at": at(1, 1)}
                for p in rows
            ],
        )
        conn.execute(
            answers.insert(),
            [{"stream": "nps", "key": p, "score": s, "category": nps.category(s), "answered_at": at(2, 1)}
             for p, s in scores.items()],
        )  # fmt: skip
        # p4's tags as another writer spaced them: the same value, so the same group as p1's
        spaced = '{"tags": [ "a",  "b" ]}'
        cast = "CAST(:spaced AS json)" if conn.dialect.name == "postgresql" else ":spaced"
        conn.execute(text(f"UPDATE profiles SET traits = {cast} WHERE id = 'p4'"), {"spaced": spaced})

    def groups(name: str) -> list[tuple[object, int]]:
        return [(g.value, g.figure.n) for g in nps.by_trait(engine, name)]

    # p5's answer (0) is p1's now: Berlin has 10, 9 and 0
    assert groups("city") == [("Berlin", 3), (None, 2)]
    berlin = nps.by_trait(engine, "city")[0].figure
    assert (berlin.promoters, berlin.passives, berlin.detractors) == (2, 0, 1)
    vip = groups("vip")  # true and 1 are different values; false (p3) too
    assert vip == [(True, 2), (1, 1), (False, 1), (None, 1)]
    assert [type(v) for v, _ in vip[:3]] == [bool, int, bool]
    assert groups("ltv") == [(0.1, 2), (3.141592653589793, 1), (None, 2)]  # numbers exactly as written
    assert groups("tags") == [(["a", "b"], 3), (None, 2)]
    assert groups('say "hi"') == [("yes", 2), ("no", 1), (None, 2)]  # a name SQLite's JSON paths cannot quote
    assert groups("a.b c") == [(5, 3), (None, 2)]  # a dot is part of the name, not a path
    assert groups("visits") == [(12, 2), (None, 3)]  # the value from traits, not trait_sources' exact sum
    assert groups("nothing") == [(None, 5)]
    engine.dispose()


def test_edge_cases(store_url: str) -> None:
    engine = store(store_url, [])
    empty = nps.summary(engine)
    assert (empty.n, empty.nps, empty.margin_of_error) == (0, None, None)
    assert nps.by_trait(engine, "city") == [] and nps.trend(engine, "week") == []
    # All promoters -> NPS 100; n' = 6, p' = 3.75 / 6, d' = 0.75 / 6: centre 0.5, var = 0.75 - 0.25 = 0.5,
    # half = 1.96 * sqrt(0.5 / 6) = 0.56580 -> [-6.58, 106.58] clamped to [-6.58, 100]: margin 53.29 (not 0)
    fans = [answer(f"x{i}", f"fan{i}@example.de", 9 + i % 2, at(5, 1 + i), "s") for i in range(3)]
    ProfileWriter(engine, IdentityConfig()).write(fans, Checkpoint(graph="t", run_id="r2"))
    check(nps.summary(engine), (3, 0, 0), 100.0, 53.29)
    with pytest.raises(nps.NpsError):
        nps.trend(engine, "day")  # type: ignore[arg-type]


def test_figure_arithmetic() -> None:
    # 10, 0 and 7: 1 promoter, 1 detractor, 1 passive -> NPS 0, margin 61.11 (as February above).
    figure = nps.NpsFigure.from_scores([10, 0]) + nps.NpsFigure.from_scores([7])
    check(figure, (1, 1, 1), 0.0, 61.11)
    assert figure.to_dict()["nps"] == 0.0 and figure.to_dict()["low_n"] is True
    assert nps.NpsFigure(30, 0, 0).low_n is False


STORE_CONNECTOR = '[connectors.store]\ntype = "profile_store"\n'
"""A config is not empty (an empty one is a problem): the store as a connector."""


# -- the command line ---------------------------------------------------------------------


def run(tmp_path: Path, store_url: str, *args: str) -> tuple[int, str, str]:
    config = tmp_path / "connectors.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n' + STORE_CONNECTOR, encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["nps", "-c", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_json_is_pure_json(engine: Engine, store_url: str, tmp_path: Path) -> None:
    code, out, err = run(tmp_path, store_url, "--json", "--by", "city", "--period", "month")
    assert code == 0, err
    data = json.loads(out)  # nothing but JSON on stdout
    assert data["summary"]["nps"] == 20.0 and data["summary"]["n"] == 10
    assert data["summary"]["margin_of_error"] == pytest.approx(45.71, abs=TOL)
    assert (data["summary"]["ci_low"], data["summary"]["ci_high"]) == pytest.approx((-30.33, 61.10), abs=TOL)
    assert [(g["value"], g["nps"]) for g in data["by"]["city"]] == [
        ("Hamburg", -25.0),
        ("Berlin", 33.33),
        (None, 66.67),
    ]
    assert [(p["period"], p["nps"]) for p in data["trend"]] == [("2024-01", 25.0), ("2024-02", 0.0), ("2024-03", 33.33)]
    # Every figure here rests on fewer than 30 answers: a warning each, in JSON and on stderr.
    assert len(data["warnings"]) == 1 + 3 + 3
    assert any(w.startswith("city = Berlin: only 3 answers") for w in data["warnings"])
    assert "warning:" in err and "warning" not in out.replace('"warnings"', "")


def test_cli_text_html_and_warnings(engine: Engine, store_url: str, tmp_path: Path) -> None:
    page = tmp_path / "nps.html"
    code, out, err = run(
        tmp_path, store_url, "--by", "city", "--by", "plan", "--html", str(page), "--latest-per-person"
    )
    assert code == 0, err
    assert "NPS +16.7" in out and "Hamburg" in out and "(none)" in out
    assert "warning:" in err and "only 6 answers" in err
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "+16.7" in html
    assert "By city" in html and "By plan" in html and "Trend per month" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html


def test_cli_filters_and_usage_errors(engine: Engine, store_url: str, tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, store_url, "--json", "--since", "2024-02-01", "--until", "2024-02-10")
    assert code == 0 and json.loads(out)["summary"]["n"] == 2
    code, out, err = run(tmp_path, store_url, "--segment", "vip")
    assert code == 2 and "unknown segment 'vip'" in err and out == ""
    assert run(tmp_path, store_url, "--since", "last week")[0] == 2
    assert run(tmp_path, store_url, "--period", "day")[0] == 2
    assert run(tmp_path, store_url, "--since", "2024-03-01", "--until", "2024-02-01")[0] == 2


def test_cli_without_answers(store_url: str, tmp_path: Path) -> None:
    code, out, err = run(tmp_path, store_url, "--json")
    assert code == 1 and out == "" and "run `cdp sync` first" in err  # no store yet: none is created
    engine = make_engine(store_url)
    ensure_schema(engine)  # a store no answer has reached yet
    engine.dispose()
    code, out, err = run(tmp_path, store_url, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["summary"]["nps"] is None and data["summary"]["n"] == 0 and data["warnings"] == []
    assert "no NPS answers in the store yet" in err
    code, out, err = run(tmp_path, store_url, "--html", str(tmp_path / "empty.html"))
    assert code == 0 and "no NPS answers" in err and "No NPS answers" in (tmp_path / "empty.html").read_text()


# -- scale ------------------------------------------------------------------------------------


def bulk(conn: Connection, table: str, columns: str, rows: list[tuple[object, ...]]) -> None:
    """Rows straight to the driver (COPY on PostgreSQL): loading should not take longer than the queries."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['?'] * len(rows[0]))})", rows)
        return
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def test_fast_on_100k_answers(store_url: str) -> None:
    """100,000 answers of 20,000 people, 90 % of them with a city: every figure comes back in seconds."""
    engine = make_engine(store_url)
    ensure_schema(engine)
    rnd = random.Random(7)
    people, count = 20_000, 100_000
    sqlite = engine.dialect.name == "sqlite"

    def when(minutes: int) -> object:  # a UTC time as SQLAlchemy stores it on each database
        value = at(1, 1) + timedelta(minutes=minutes)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else value

    def city_doc(i: int) -> str:  # 90 % have a city
        return json.dumps({"city": ("Berlin", "Wien")[i % 2], "plan": "pro"} if i % 10 else {})

    scores = [rnd.randint(0, 10) for _ in range(count)]
    with engine.begin() as conn:
        bulk(
            conn,
            "profiles",
            "id, founder, sort_key, created_at, updated_at, traits",
            [(f"p{i}", f"s{i}", "k", when(0), when(0), city_doc(i)) for i in range(people)],
        )
        bulk(
            conn,
            "id_sets",
            "id, identifiers, sort_key, profile_id",
            [(f"s{i}", "[]", "k", f"p{i}") for i in range(people)],
        )
        bulk(
            conn,
            "record_index",
            "stream, key, kind, set_id, updated_at",
            [("s", f"k{i}", "nps_response", f"s{i % people}", when(0)) for i in range(count)],
        )
        bulk(
            conn,
            "nps_responses",
            "stream, key, score, category, answered_at",
            [("s", f"k{i}", score, nps.category(score), when(5 * i)) for i, score in enumerate(scores)],
        )
    started = time.perf_counter()
    assert nps.summary(engine) == nps.NpsFigure.from_scores(scores)
    groups = nps.by_trait(engine, "city")
    assert sorted(g.value for g in groups[:2]) == ["Berlin", "Wien"] and groups[2:3][0].value is None
    assert len(groups) == 3 and groups[-1].figure.n == count // 10
    assert sum(g.figure.n for g in groups) == count
    weeks = nps.trend(engine, "week")
    assert sum(p.figure.n for p in weeks) == count and weeks[0].period == "2024-W01"
    assert nps.summary(engine, latest_per_person=True).n == people
    assert sum(g.figure.n for g in nps.by_trait(engine, "city", latest_per_person=True)) == people
    elapsed = time.perf_counter() - started
    assert elapsed < 30, f"{elapsed:.1f} s"  # about 3-5 s on a slow machine; this only catches a per-row plan
