"""NPS verbatims on SQLite and PostgreSQL: comments by category, their frequent terms, the newest examples."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from cdp_core.cli import build_app
from cdp_core.records import Record, RecordKind
from test_nps import store
from typer.testing import CliRunner

from cdp_profiles.nps import Filters
from cdp_profiles.nps_verbatims import STOP_WORDS, terms_of, verbatims


def answer(key: str, who: str, score: int, comment: str | None, day: int | None, survey: str = "s1") -> Record:
    data: dict[str, object] = {"score": score, "survey": survey}
    if comment is not None:
        data["comment"] = comment
    when = None if day is None else datetime(2024, 5, day, 9, tzinfo=UTC)
    return Record(
        stream="typeform",
        kind=RecordKind.nps_response,
        key=key,
        data=data,
        identifiers={"email": f"{who}@example.de"},
        occurred_at=when,
    )


ANSWERS = [
    answer("1", "anna", 10, "Super Service, die Lieferung war schnell!", 1),
    answer("2", "ben", 9, "Fast delivery and great service. Service service service.", 2),
    answer("3", "cara", 9, "Lieferung schnell, Preis fair", 3, survey="s2"),
    answer("4", "dave", 8, "ok, aber der Preis ist hoch", 4),
    answer("5", "eva", 3, "Die App stürzt ab. Don't like it", 5),
    answer("6", "frank", 0, "App stürzt ständig ab, Support antwortet nicht", 6),
    answer("7", "gina", 2, "   ", 7),  # blank: not a comment
    answer("8", "hans", 1, None, 8),  # no comment
    answer("9", "ines", 6, "Zu teuer", None),  # undated: the last example
    answer("10", "anna", 4, "Jetzt ist die App kaputt", 9),  # Anna's later answer
]


def test_terms_of() -> None:
    assert terms_of("Die Lieferung war SCHNELL, schnell!") == ["lieferung", "schnell", "schnell"]
    assert terms_of("Don't like it: 5 stars, a+ ÜBER-Größe") == ["like", "stars", "größe"]  # über is a stop word
    assert terms_of("It’s great") == ["great"]  # a typographic apostrophe is an apostrophe
    assert {"the", "und", "nicht", "not", "der", "die", "das", "ab"} <= STOP_WORDS


def test_verbatims_by_category(store_url: str) -> None:
    engine = store(store_url, ANSWERS)
    result = verbatims(engine, per_category=2, terms=3).to_dict()
    assert list(result) == ["promoter", "passive", "detractor"]
    promoters = result["promoter"]
    assert promoters["n_comments"] == 3
    # Comments that use each term (once per comment): service 2 (Anna, Ben), lieferung 2 (Anna, Cara),
    # schnell 2 (Anna, Cara); delivery, fair, fast, great, preis, super 1. Ties by term.
    assert promoters["terms"] == [["lieferung", 2], ["schnell", 2], ["service", 2]]
    assert [e["text"] for e in promoters["examples"]] == [
        "Lieferung schnell, Preis fair",
        "Fast delivery and great service. Service service service.",
    ]
    assert promoters["examples"][0] == {
        "text": "Lieferung schnell, Preis fair",
        "score": 9,
        "answered_at": "2024-05-03T09:00:00+00:00",
    }
    passive = result["passive"]
    assert passive["n_comments"] == 1 and passive["terms"] == [["hoch", 1], ["ok", 1], ["preis", 1]]
    detractors = result["detractor"]
    # Eva, Frank, Ines and Anna's later answer have comments; Gina's is blank and Hans wrote none.
    assert detractors["n_comments"] == 4
    # app 3 (Eva, Frank, Anna), stürzt 2; "ab" (of "stürzt ab") and "don't" are stop words; then the ones by term.
    assert detractors["terms"] == [["app", 3], ["stürzt", 2], ["antwortet", 1]]
    everything = verbatims(engine, per_category=10).to_dict()["detractor"]["examples"]
    assert [e["text"] for e in everything][-1] == "Zu teuer" and everything[-1]["answered_at"] is None
    assert everything[0]["text"] == "Jetzt ist die App kaputt"  # newest first
    engine.dispose()


def test_filters_apply(store_url: str) -> None:
    engine = store(store_url, ANSWERS)
    only_s2 = verbatims(engine, Filters(survey="s2")).to_dict()
    assert [c["n_comments"] for c in only_s2.values()] == [1, 0, 0]
    latest = verbatims(engine, Filters(latest_per_person=True)).to_dict()
    # Anna's latest answer is the 4 with "Jetzt ist die App kaputt": her promoter comment drops out.
    assert latest["promoter"]["n_comments"] == 2 and latest["detractor"]["n_comments"] == 4
    empty = verbatims(engine, Filters(survey="none")).to_dict()
    assert empty["passive"] == {"n_comments": 0, "terms": [], "examples": []}
    engine.dispose()


def test_cli_verbatims(store_url: str, tmp_path: Path) -> None:
    store(store_url, ANSWERS).dispose()
    config = tmp_path / "connectors.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n[connectors.store]\ntype = "profile_store"\n', encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(build_app(), ["nps", "verbatims", "-c", str(config), "--json", "--terms", "2"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["promoter"]["terms"] == [["lieferung", 2], ["schnell", 2]] and data["filters"]["survey"] is None
    result = runner.invoke(build_app(), ["nps", "verbatims", "-c", str(config), "--per-category", "1"])
    assert result.exit_code == 0, result.stderr
    assert "promoters: 3 comments" in result.stdout and "Jetzt ist die App kaputt" in result.stdout
    assert "Zu teuer" not in result.stdout  # one example per category: the newest
    result = runner.invoke(build_app(), ["nps", "verbatims", "-c", str(config), "--survey", "none"])
    assert result.exit_code == 0 and "no NPS answers with a comment match these filters" in result.stderr
    result = runner.invoke(build_app(), ["nps", "verbatims", "-c", str(config), "--terms", "-1"])
    assert result.exit_code == 2
