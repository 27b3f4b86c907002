"""`cdp segments`, `cdp profiles show --segment`, `cdp profiles list --where RULE` and `cdp nps --segment`, through the real app."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cdp_core.cli import build_app
from cdp_core.records import Record, RecordKind
from sqlalchemy import Engine
from test_segment_refresh import T0, order, person, pid, write
from typer.testing import CliRunner

CONFIG = """
[connectors.store]
type = "profile_store"

[computed_traits.order_count]
expression = "count(orders)"
description = "orders ever"

[segments.berliners]
where = "city == 'Berlin'"
description = "people in Berlin"

[segments.buyers]
where = "count(orders) >= 2"
"""


def answer(key: str, email: str, score: int) -> Record:
    return Record(stream="survey.nps", kind=RecordKind.nps_response, key=key, data={"score": score},
                  identifiers={"email": email}, occurred_at=T0)  # fmt: skip


@pytest.fixture
def engine(store_engine: Engine) -> Iterator[Engine]:
    write(store_engine, "r1", person("a", "anna@x.de", "Berlin", T0), person("b", "bob@x.de", "Berlin", T0),
          person("c", "carla@x.de", "Munich", T0), order("o1", "anna@x.de", T0), order("o2", "anna@x.de", T0),
          answer("n1", "anna@x.de", 10), answer("n2", "bob@x.de", 0), answer("n3", "carla@x.de", 10))  # fmt: skip
    yield store_engine


def cdp(engine: Engine, tmp_path: Path, *args: str) -> Any:
    config = tmp_path / "connectors.toml"
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    config.write_text(f'[store]\nurl = "{url}"\n' + CONFIG, encoding="utf-8")
    return CliRunner().invoke(build_app(), [*args, "-c", str(config)])


def as_json(engine: Engine, tmp_path: Path, *args: str) -> Any:
    result = cdp(engine, tmp_path, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_refresh_count_show_preview_history(engine: Engine, tmp_path: Path) -> None:
    anna, bob = pid(engine, "anna@x.de"), pid(engine, "bob@x.de")
    before = as_json(engine, tmp_path, "segments", "list")
    assert before == [
        {"name": "berliners", "description": "people in Berlin", "members": None, "refreshed_at": None},
        {"name": "buyers", "description": "", "members": None, "refreshed_at": None},
    ]
    refreshed = as_json(engine, tmp_path, "segments", "refresh")
    assert refreshed["computed_traits"] == {"scope": "all", "rows": 3}
    assert [(s["segment"], s["members"], s["entered"], s["left"]) for s in refreshed["segments"]] == [
        ("berliners", 2, 2, 0),
        ("buyers", 1, 1, 0),
    ]
    after = as_json(engine, tmp_path, "segments", "list")
    assert [(s["name"], s["members"]) for s in after] == [("berliners", 2), ("buyers", 1)]
    assert all(s["refreshed_at"] for s in after)
    human = cdp(engine, tmp_path, "segments", "list")
    assert human.exit_code == 0 and "people in Berlin" in human.stdout

    assert as_json(engine, tmp_path, "segments", "count") == {"berliners": 2, "buyers": 1}
    assert as_json(engine, tmp_path, "segments", "count", "buyers") == {"name": "buyers", "members": 1}
    shown = as_json(engine, tmp_path, "segments", "show", "berliners")
    assert shown["where"] == "city == 'Berlin'" and shown["members"] == 2 and shown["stream"] == "segment_berliners"
    assert shown["last_refresh"]["members"] == 2
    preview = as_json(engine, tmp_path, "segments", "preview", "berliners", "--limit", "5")
    assert sorted((p["id"], p["email"]) for p in preview) == sorted([(anna, "anna@x.de"), (bob, "bob@x.de")])

    write(engine, "r2", person("b2", "bob@x.de", "Hamburg", T0 + timedelta(days=1)))  # the store's refresh is the destination's; here, by hand
    as_json(engine, tmp_path, "segments", "refresh")
    stays = as_json(engine, tmp_path, "segments", "history", "berliners")
    assert [(s["profile_id"], s["left_at"] is not None) for s in stays][0] == (bob, True)
    assert {s["profile_id"] for s in stays if s["left_at"] is None} == {anna}
    only_bob = as_json(engine, tmp_path, "segments", "history", "berliners", "--profile", bob)
    assert [s["profile_id"] for s in only_bob] == [bob]
    table = cdp(engine, tmp_path, "segments", "history", "berliners")
    assert table.exit_code == 0 and "(still in)" in table.stdout


def test_unknown_segments_are_usage_errors_with_a_suggestion(engine: Engine, tmp_path: Path) -> None:
    for args in (("segments", "show", "berliner"), ("segments", "count", "berliner"), ("segments", "history", "berliner"),
                 ("segments", "preview", "berliner"), ("nps", "--segment", "berliner"),
                 ("profiles", "show", "anna@x.de", "--segment", "berliner")):  # fmt: skip
        result = cdp(engine, tmp_path, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "unknown segment 'berliner' (did you mean 'berliners'?)" in result.stderr, args


def test_profiles_show_lists_segments_computed_traits_and_explains(engine: Engine, tmp_path: Path) -> None:
    anna = pid(engine, "anna@x.de")
    as_json(engine, tmp_path, "segments", "refresh")
    view = as_json(engine, tmp_path, "profiles", "show", "anna@x.de", "--segment", "buyers")
    assert [s["segment"] for s in view["segments"]] == ["berliners", "buyers"]
    traits = {t["name"]: t for t in view["traits"]}
    assert traits["order_count"]["value"] == 2 and traits["order_count"]["source"] == "computed"
    assert view["explanation"]["segment"] == "buyers" and view["explanation"]["member"] is True
    assert view["explanation"]["why"]["held"] is True and "count(orders)" in json.dumps(view["explanation"]["why"])
    out = cdp(engine, tmp_path, "profiles", "show", "carla@x.de", "--segment", "berliners")
    assert out.exit_code == 0, out.output
    assert "segment berliners: not in" in out.stdout and "✗" in out.stdout
    assert anna not in out.stdout


def test_profiles_list_where_takes_a_rule_and_the_old_form(engine: Engine, tmp_path: Path) -> None:
    rows = as_json(engine, tmp_path, "profiles", "list", "--where", "count(orders) >= 1")
    assert [r["email"] for r in rows] == ["anna@x.de"]
    both = as_json(engine, tmp_path, "profiles", "list", "--where", "city == 'Berlin'", "--where", "city=berlin")
    assert sorted(r["email"] for r in both) == ["anna@x.de", "bob@x.de"]
    bad = cdp(engine, tmp_path, "profiles", "list", "--where", "count(order) >= 1")
    assert bad.exit_code == 2 and "--where 'count(order) >= 1'" in bad.stderr


def test_nps_for_a_segment_counts_only_its_members(engine: Engine, tmp_path: Path) -> None:
    everyone = as_json(engine, tmp_path, "nps")
    berlin = as_json(engine, tmp_path, "nps", "--segment", "berliners")
    assert everyone["summary"]["n"] == 3 and berlin["summary"]["n"] == 2
    assert (berlin["summary"]["promoters"], berlin["summary"]["detractors"]) == (1, 1)
    assert berlin["filters"]["segment"] == "berliners"


def test_without_a_store_the_commands_say_so(tmp_path: Path) -> None:
    """A store never synced (a missing SQLite file) is the store's own error, exit 1; nothing is created."""
    config = tmp_path / "connectors.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/none.sqlite"\n' + CONFIG, encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["segments", "list", "-c", str(config)])
    assert result.exit_code == 1 and "error" in result.stderr
    assert not (tmp_path / "none.sqlite").exists()


# -- CDP_AS_OF: when rules are evaluated ------------------------------------------------------


def test_as_of_moves_the_windows_and_a_bad_value_is_a_config_problem(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cdp_profiles.segments.clock import AsOfError, evaluation_time, parse_as_of

    assert parse_as_of("2024-07-01").isoformat() == "2024-07-01T00:00:00+00:00"
    assert parse_as_of("2024-07-01T02:00:00+02:00").isoformat() == "2024-07-01T00:00:00+00:00"
    with pytest.raises(AsOfError, match="not an ISO 8601 date"):
        parse_as_of("yesterday")

    recent = CONFIG + '\n[segments.recent_buyers]\nwhere = "count(orders, days = 30) > 0"\n'
    monkeypatch.setattr(sys.modules[__name__], "CONFIG", recent)
    monkeypatch.setenv("CDP_AS_OF", (T0 + timedelta(days=1)).isoformat())
    assert evaluation_time() == T0 + timedelta(days=1)
    assert as_json(engine, tmp_path, "segments", "count", "recent_buyers")["members"] == 1
    monkeypatch.setenv("CDP_AS_OF", (T0 + timedelta(days=31)).isoformat())
    assert as_json(engine, tmp_path, "segments", "count", "recent_buyers")["members"] == 0, "the orders left the window"

    monkeypatch.setenv("CDP_AS_OF", "last tuesday")
    result = cdp(engine, tmp_path, "validate")
    assert result.exit_code == 2
    assert "CDP_AS_OF: not an ISO 8601 date or date-time: 'last tuesday'" in result.output
    assert "Traceback" not in result.output


# -- the scheduler's daily job ---------------------------------------------------------------


def test_the_daily_job_refreshes_everyone_like_the_command(engine: Engine, tmp_path: Path) -> None:
    from cdp_core.config import load_config
    from cdp_core.plugins import load_plugins

    plugins = load_plugins()
    [job] = [r for r in plugins.jobs if r.type_name == "segments-refresh"]
    assert job.plugin == "profiles" and job.cls.schedule == "15 3 * * *"
    cdp(engine, tmp_path, "validate")  # writes the config next to the store's URL
    config = load_config(tmp_path / "connectors.toml", plugins, env={})
    summary = job.cls.run(config)
    assert summary == "computed traits: 3 values; segments: berliners 2 (+2/-0), buyers 1 (+1/-0)"
    assert as_json(engine, tmp_path, "segments", "list")[0]["members"] == 2
    (tmp_path / "bare.toml").write_text((tmp_path / "connectors.toml").read_text().split("[computed_traits")[0])
    assert job.cls.run(load_config(tmp_path / "bare.toml", plugins, env={})) == "no segments or computed traits configured"
