"""`cdp nps --html`: the report's survey, date range, intervals, smoothed trend, drivers, verbatims and segments."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cdp_core.cli import build_app
from nps_report_data import HOSTILE, config_file, report_store
from sqlalchemy import Engine
from typer.testing import CliRunner

from cdp_profiles.nps_page import drivers_section


@pytest.fixture
def engine(store_url: str) -> Engine:
    return report_store(store_url)


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), ["nps", "-c", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_report_page(engine: Engine, store_url: str, tmp_path: Path) -> None:
    page = tmp_path / "nps.html"
    config = config_file(tmp_path, store_url)
    code, out, err = run(config, "--json", "--period", "month", "--smooth", "ma:2", "--html", str(page))
    assert code == 0, err
    data = json.loads(out)
    # Scores 10 9 3 7 6 9 8 10 0 10 9: 6 promoters, 2 passives, 3 detractors: 300 / 11 = +27.27.
    assert data["summary"]["nps"] == 27.27 and data["surveys"] == ["s1", "s2"]
    assert data["first_answer"].startswith("2024-01-10") and data["last_answer"].startswith("2024-03-28")
    # Berliners (Anna, Ben): 10 9 6 9 = 3 promoters, 1 detractor: +50; the other 7: 3 7 9 8 10 0 10 = +14.29.
    # Hamburgers (Cara, Dave): 3 7 10 0 = -25; the other 7: 10 9 6 9 8 10 9 = +57.14.
    splits = {s["segment"]: (s["in"]["nps"], s["in"]["n"], s["out"]["nps"], s["out"]["n"]) for s in data["segments"]}
    assert splits == {"berliners": (50.0, 4, 14.29, 7), "hamburgers": (-25.0, 4, 57.14, 7)}
    assert data["verbatims"]["detractor"]["n_comments"] == 1 and data["verbatims"]["promoter"]["n_comments"] == 3
    assert isinstance(data["drivers"], list)

    html = page.read_text(encoding="utf-8")
    assert 'id="survey">Surveys: <b>s1, s2</b>' in html
    assert 'id="date-range">Answers: <b>2024-01-10 to 2024-03-28</b>' in html
    assert 'id="headline-nps">+27.3<' in html and "95 % interval <b>" in html
    assert 'class="smoothed"' in html and "smoothed: moving average of 2 periods" in html
    # Months: 2024-03 (3 0 1) = +50 and 2024-02 (1 1 1) pooled by ma:2 -> (4 1 2) = 2 / 7: +28.6 in the table.
    assert re.search(r"2024-03</td><td><b>\+50\.0</b></td><td>\+28\.6</td>", html)
    assert 'id="drivers"' in html and 'id="segments"' in html and "berliners" in html and "+35.7" in html
    for category in ("promoter", "passive", "detractor"):
        assert f'id="verbatims-{category}"' in html
    assert "Friendly support, fast answers" in html and "fast<i>×3</i>" in html
    # The comment is untrusted: escaped, never markup.
    assert (
        "<script" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in html
    )
    assert HOSTILE not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html


def test_report_of_one_survey_and_segment(engine: Engine, store_url: str, tmp_path: Path) -> None:
    page = tmp_path / "nps.html"
    config = config_file(tmp_path, store_url)
    code, out, err = run(config, "--json", "--survey", "s1", "--segment", "hamburgers", "--html", str(page))
    assert code == 0, err
    data = json.loads(out)
    # Survey s1 of Cara and Dave: 3 and 7. In hamburgers both; berliners none of them.
    assert data["summary"]["n"] == 2 and data["surveys"] == ["s1"]
    splits = {s["segment"]: (s["in"]["n"], s["out"]["n"]) for s in data["segments"]}
    assert splits == {"berliners": (0, 2), "hamburgers": (2, 0)}
    html = page.read_text(encoding="utf-8")
    assert 'id="survey">Survey: <b>s1</b>' in html and "2024-01-20 to 2024-01-25" in html
    assert "Trend per month" in html


def test_drivers_table_from_driver_dicts() -> None:
    row = {"factor": "plan", "kind": "trait", "group": "<b>pro</b>", "n_group": 40, "nps_group": 45.0,
           "n_rest": 160, "nps_rest": 10.0, "difference": 35.0, "ci_low": 12.5, "ci_high": 57.5,
           "p_value": 0.001, "p_adjusted": 0.011, "significant": True}  # fmt: skip
    html = drivers_section([row, {**row, "group": "basic", "difference": -3.0, "significant": False}])
    assert '<td class="l">plan</td><td class="l">&lt;b&gt;pro&lt;/b&gt;</td>' in html
    assert "+35.0" in html and "+12.5 to +57.5" in html and "0.011" in html
    assert html.count('class="badge yes"') == 1 and html.count('class="badge no"') == 1
    assert "No factor to compare" in drivers_section([])
