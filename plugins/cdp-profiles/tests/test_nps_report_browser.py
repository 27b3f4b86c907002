"""The NPS report in headless Chromium: the main elements are visible; the screenshot is kept.

Needs Debian's ``chromium`` (/usr/bin/chromium, or CDP_CHROMIUM) and the ``playwright`` package
(dev extras; no browser download: it drives the system Chromium). ``make test`` installs Chromium
when it is missing. Without it this test fails, unless CDP_SKIP_BROWSER_TESTS=1 says to skip it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from cdp_core.cli import build_app
from nps_report_data import config_file, report_store
from typer.testing import CliRunner

CHROMIUM = os.environ.get("CDP_CHROMIUM", "/usr/bin/chromium")
ARTIFACT = Path(__file__).resolve().parent.parent / "test-artifacts" / "nps-report.png"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _browser_or_fail() -> Any:
    opted_out = os.environ.get("CDP_SKIP_BROWSER_TESTS") == "1"
    problem = None
    if not Path(CHROMIUM).is_file():
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CDP_CHROMIUM)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = problem or "the playwright package is missing (make install-dev)"
    if problem is not None:
        if opted_out:
            pytest.skip(f"CDP_SKIP_BROWSER_TESTS=1: {problem}")
        pytest.fail(f"{problem}; set CDP_SKIP_BROWSER_TESTS=1 to skip the browser test on purpose")
    return sync_playwright


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    sync_playwright = _browser_or_fail()
    store_url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    report_store(store_url).dispose()
    page_file = tmp_path / "nps.html"
    args = ["nps", "-c", str(config_file(tmp_path, store_url)), "--period", "month", "--smooth", "ma:2", "--by", "city",
            "--min-n", "3"]  # fmt: skip (a small store: drivers from groups of 3 answers)
    result = CliRunner().invoke(build_app(), [*args, "--html", str(page_file)])
    assert result.exit_code == 0, result.stderr

    requests: list[str] = []
    shot = tmp_path / "nps-report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh user-data dir
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            java_script_enabled=False,  # the page reads without scripts
            viewport={"width": 1100, "height": 900},
        )
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())

            def visible(selector: str) -> Any:
                element = page.locator(selector).first
                assert element.is_visible(), f"{selector} is not visible"
                box = element.bounding_box()
                assert box is not None and box["width"] > 50 and box["height"] > 10, f"{selector}: {box}"
                return element

            assert visible("#headline-nps").inner_text() == "+27.3"
            assert "s1, s2" in visible("#survey").inner_text()
            assert "2024-01-10 to 2024-03-28" in visible("#date-range").inner_text()
            chart = visible("#trend-chart")
            assert chart.locator("circle").count() == 3 and chart.locator("polyline.smoothed").count() == 1
            drivers = visible("#drivers")
            assert drivers.locator("tbody tr").count() >= 1 and "Berlin" in drivers.inner_text()
            for category, text in (("promoter", "fast"), ("passive", "slow"), ("detractor", "<script>")):
                assert text in visible(f"#verbatims-{category}").inner_text()
            segments = visible("#segments")
            assert "berliners" in segments.inner_text() and "hamburgers" in segments.inner_text()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert requests == [page_file.as_uri()], f"the page fetched more than itself: {requests}"
    assert shot.stat().st_size > 10_000
    ARTIFACT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACT)
    print(f"screenshot: {shot} and {ARTIFACT}")
