"""RFM from the store against a fixture scored by hand, on SQLite and PostgreSQL; the traits in segment rules.

Twelve people, ``now`` = 2024-06-01 12:00 UTC, orders at 12:00 so that recency is whole days. With
n = 12 and 5 bins a person at position p (worst first; ties take the first position of their value)
scores 1 + floor((p - 1) * 5 / 12): positions 1-3 -> 1, 4-5 -> 2, 6-8 -> 3, 9-10 -> 4, 11-12 -> 5.

======  =====================  ========  =====  =====
person  orders (days ago)      amount    total
======  =====================  ========  =====  =====
a       1 20 40 60 80 100      100 each  600
b       2                      50        50     (+ a cancelled order today: not counted)
c       5 50 100               100 each  300
d       10 20 30 40 50         50 each   250
e       10                     900       900    (+ a 'Refunded' order: not counted)
f       30 90                  40 each   80
g       60 70 80 90            100 each  400
h       90 100 ... 160 (8)     100 each  800
i       120                    20        20
j       200 250                50 each   100
k       300 310 ... 360 (7)    100 each  700
l       400                    50        50
======  =====================  ========  =====  =====

Recency, worst first: l 400 (p1), k 300 (p2), j 200 (p3), i 120 (p4), h 90 (p5), g 60 (p6), f 30 (p7),
d = e 10 (both p8), c 5 (p10), b 2 (p11), a 1 (p12) -> R: l k j 1; i h 2; g f d e 3; c 4; b a 5.
Frequency: b e i l have 1 (all p1 -> 1); f j 2 (p5 -> 2); c 3 (p7 -> 3); g 4 (p8 -> 3); d 5 (p9 -> 4);
a 6 (p10 -> 4); k 7 (p11 -> 5); h 8 (p12 -> 5).
Monetary: i 20 (p1), b = l 50 (p2), f 80 (p4), j 100 (p5), d 250 (p6), c 300 (p7), g 400 (p8),
a 600 (p9), k 700 (p10), h 800 (p11), e 900 (p12) -> M: i b l 1; f j 2; d c g 3; a k 4; h e 5.
Groups (R, F): a 5 4 champions; b 5 1 new_customers; c 4 3 potential_loyalists; d 3 4 loyal_customers;
e 3 1 and f 3 2 about_to_sleep; g 3 3 need_attention; h 2 5 and k 1 5 cannot_lose_them;
i 2 1 and j 1 2 hibernating; l 1 1 lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cdp_core.cli import build_app
from cdp_core.records import Record, RecordKind
from sqlalchemy import Engine
from test_segment_refresh import members as segment_members
from test_segment_refresh import pid, write
from typer.testing import CliRunner

from cdp_profiles.analytics.config import AnalyticsConfig, RfmConfig
from cdp_profiles.analytics.orders import histories
from cdp_profiles.analytics.rfm import group, rfm, scores
from cdp_profiles.membership import reads
from cdp_profiles.membership.refresh import refresh
from cdp_profiles.segments import compile_rules, is_member, load_person

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
PEOPLE: dict[str, tuple[list[int], int]] = {
    "a": ([1, 20, 40, 60, 80, 100], 100),
    "b": ([2], 50),
    "c": ([5, 50, 100], 100),
    "d": ([10, 20, 30, 40, 50], 50),
    "e": ([10], 900),
    "f": ([30, 90], 40),
    "g": ([60, 70, 80, 90], 100),
    "h": ([90, 100, 110, 120, 130, 140, 150, 160], 100),
    "i": ([120], 20),
    "j": ([200, 250], 50),
    "k": ([300, 310, 320, 330, 340, 350, 360], 100),
    "l": ([400], 50),
}
EXPECTED = {  # R F M, group: worked out in the module's docstring
    "a": ("544", "champions"), "b": ("511", "new_customers"), "c": ("433", "potential_loyalists"),
    "d": ("343", "loyal_customers"), "e": ("315", "about_to_sleep"), "f": ("322", "about_to_sleep"),
    "g": ("333", "need_attention"), "h": ("255", "cannot_lose_them"), "i": ("211", "hibernating"),
    "j": ("122", "hibernating"), "k": ("154", "cannot_lose_them"), "l": ("111", "lost"),
}  # fmt: skip
RFM = AnalyticsConfig(rfm=RfmConfig())


def order(key: str, who: str, days: int, amount: int, status: str | None = None) -> Record:
    data: dict[str, Any] = {"order_id": key, "amount": str(amount), "currency": "EUR"}
    if status:
        data["status"] = status
    return Record(stream="shop.orders", kind=RecordKind.order, key=key, data=data,
                  identifiers={"email": f"{who}@x.de"}, occurred_at=NOW - timedelta(days=days))  # fmt: skip


@pytest.fixture
def engine(store_engine: Engine) -> Iterator[Engine]:
    records = [order(f"{who}{k}", who, d, amount) for who, (days, amount) in PEOPLE.items() for k, d in enumerate(days)]
    records += [order("b-cancel", "b", 0, 999, "cancelled"), order("e-refund", "e", 0, 5000, "Refunded")]
    write(store_engine, "r1", *records)
    yield store_engine


def by_person(engine: Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        people, money, skipped = histories(conn, RFM)
    assert money.base == "EUR" and skipped.excluded_orders == 2
    names = {pid(engine, f"{who}@x.de"): who for who in PEOPLE}
    return {names[p.profile_id]: (f"{p.r}{p.f}{p.m}", p.group(5)) for p in rfm(people, NOW)}


def test_scores_and_groups_match_the_hand_computed_fixture(engine: Engine) -> None:
    assert by_person(engine) == EXPECTED


def test_ties_share_the_lowest_score_and_order_does_not_matter() -> None:
    assert scores([5.0, 1.0, 1.0, 1.0, 9.0], 5) == [4, 1, 1, 1, 5]
    assert scores([9.0, 1.0, 5.0, 1.0, 1.0], 5) == [5, 1, 4, 1, 1]
    assert scores([None, 2.0], 5) == [None, 1]
    grid = {(r, f): group(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert grid[(1, 1)] == "lost" and grid[(2, 2)] == "hibernating" and grid[(5, 5)] == "champions"
    assert grid[(1, 3)] == grid[(2, 4)] == "at_risk" and grid[(4, 1)] == "promising"


def test_the_refresh_stores_the_traits_and_a_segment_reads_rfm_group(engine: Engine) -> None:
    rules = compile_rules(
        segments={"champs": "rfm_group == 'champions'", "slipping": "rfm_group in ['lost', 'hibernating']",
                  "high_m": "rfm_monetary >= 4 and rfm_score != '544'"},
        analytics=RFM,
    )  # fmt: skip
    result = refresh(engine, rules, now=NOW)
    assert result.analytics is not None and result.analytics.people == {"rfm": 12}
    ids = {who: pid(engine, f"{who}@x.de") for who in PEOPLE}
    with engine.connect() as conn:
        stored = reads.computed_values(conn, ids.values())
        assert {w: (stored[p]["rfm_score"][0], stored[p]["rfm_group"][0]) for w, p in ids.items()} == EXPECTED
        assert stored[ids["h"]]["rfm_recency"][0] == 2 and stored[ids["h"]]["rfm_frequency"][0] == 5
        for who in ("a", "l"):  # in memory, from the stored values: the same answer as the SQL
            person = load_person(conn, ids[who])
            assert person is not None and is_member(rules, "champs", person, NOW) == (who == "a")
    members = {seg.segment: seg.members for seg in result.segments}
    assert members == {"champs": 1, "slipping": 3, "high_m": 3}  # high_m: k (4), h (5), e (5); not a (544)
    assert segment_members(engine, "slipping") == {ids["i"], ids["j"], ids["l"]}
    assert segment_members(engine, "champs") == {ids["a"]}
    # A sync's refresh (run_id) leaves the analytics' traits as they are; a computed trait does not clear them.
    later = compile_rules({"n": "count(orders)"}, {"champs": "rfm_group == 'champions'"}, analytics=RFM)
    again = refresh(engine, later, now=NOW, run_id="r1")
    assert again.analytics is None and segment_members(engine, "champs") == {ids["a"]}
    with engine.connect() as conn:
        assert reads.computed_values(conn, [ids["a"]])[ids["a"]]["rfm_group"][0] == "champions"


def test_rules_know_the_names_only_when_configured() -> None:
    from cdp_profiles.segments import RulesError

    with pytest.raises(RulesError, match="unknown trait 'rfm_grop'.*did you mean 'rfm_group'"):
        compile_rules(segments={"s": "rfm_grop == 'lost'"}, analytics=RFM, traits=["city"])
    with pytest.raises(RulesError, match="unknown trait 'rfm_group'"):
        compile_rules(segments={"s": "rfm_group == 'lost'"}, traits=["city"])
    with pytest.raises(RulesError, match="'rfm_group' is a trait \\[analytics\\] writes"):
        compile_rules({"rfm_group": "count(orders)"}, analytics=RFM)


def config_file(engine: Engine, tmp_path: Path, extra: str = "") -> Path:
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    path = tmp_path / "connectors.toml"
    path.write_text(f'[store]\nurl = "{url}"\n[connectors.store]\ntype = "profile_store"\n{extra}', encoding="utf-8")
    return path


def cdp(config: Path, *args: str) -> Any:
    return CliRunner().invoke(build_app(), [*args, "-c", str(config)], env={"CDP_AS_OF": NOW.isoformat()})


def test_the_rfm_command_shows_the_grid_and_groups(engine: Engine, tmp_path: Path) -> None:
    config = config_file(engine, tmp_path, "[analytics.rfm]\nbins = 5\n")
    result = cdp(config, "analytics", "rfm", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["people"] == 12 and data["currency"] == "EUR" and data["excluded_orders"] == 2
    assert data["revenue"] == 4250.0
    groups = {g["group"]: (g["people"], g["revenue"]) for g in data["groups"]}
    assert groups["cannot_lose_them"] == (2, 1500.0) and groups["about_to_sleep"] == (2, 980.0)
    assert groups["at_risk"] == (0, 0.0)
    assert {(c["r"], c["f"]): c["people"] for c in data["grid"]}[(3, 1)] == 1
    human = cdp(config, "analytics", "rfm")
    assert human.exit_code == 0 and "cannot_lose_them" in human.stdout and "R5" in human.stdout


def test_currencies_convert_with_rates_and_the_rest_is_left_out(engine: Engine) -> None:
    extra = [Record(stream="shop.orders", kind=RecordKind.order, key=k, data={"amount": "10", "currency": c},
                    identifiers={"email": "a@x.de"}, occurred_at=NOW - timedelta(days=3)) for k, c in (("u", "USD"), ("y", "JPY"))]  # fmt: skip
    write(engine, "r2", *extra)
    config = AnalyticsConfig(currency="EUR", rates={"USD": 0.5}, rfm=RfmConfig())
    with engine.connect() as conn:
        people, money, skipped = histories(conn, config)
    a = next(p for p in people if p.profile_id == pid(engine, "a@x.de"))
    assert (a.orders, a.amount) == (8, 605.0)  # both orders count; only the USD one's amount (10 * 0.5)
    assert skipped.to_dict()["left_out"] == {"JPY": {"orders": 1, "amount": 10.0}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[analytics]\ncurency = "EUR"\n', "analytics.curency: unknown key (did you mean 'currency'?)"),
        ('[analytics.rfm]\nbin = 4\n', "analytics.rfm.bin: unknown key (did you mean 'bins'?)"),
        ('[analytics]\ncurrency = "euro"\n', "analytics.currency: Value error, a currency is a three-letter"),
        ('[analytics.rates]\nUSD = 0.9\n', "[analytics.rates] needs [analytics] currency"),
    ],
)
def test_a_bad_analytics_section_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "connectors.toml"
    config.write_text(f'[connectors.store]\ntype = "profile_store"\n\n{text}', encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["validate", "-c", str(config)])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()), result.output
