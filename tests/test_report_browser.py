"""What evaluators see, in a real browser: headless Chromium (Debian's `chromium`,
which .ci/run installs) opens the HTML report with the network cut off, and every
chart shows one mark per published value; and the Dagster UI shows the charts of the
asset metadata as images."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from outcomes import schema
from outcomes.config import ENV_LANDING_DIR, ENV_LINKAGE_KEY, ENV_WAREHOUSE_DIR
from outcomes.impact import EVENT_TIME
from outcomes.indicators import REGISTRY
from pipelines.cli import main
from tests.conftest import TEST_KEY
from tests.test_secret import webserver

CHROMIUM = os.environ.get("OUTCOMES_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# where the screenshot goes besides the test's own folder, e.g. to look at it after CI
SCREENSHOT_DIR = os.environ.get("OUTCOMES_SCREENSHOT_DIR")

MARKS = """() => [...document.querySelectorAll('figure[data-chart]')].map(f => ({
    key: f.dataset.chart,
    declared: Number(f.dataset.marks),
    drawn: f.querySelectorAll('g[id^="marks-"] use').length,
    label: (f.querySelector('svg[role="img"]') || {getAttribute: () => ''})
        .getAttribute('aria-label'),
    tableRows: f.nextElementSibling && f.nextElementSibling.tagName === 'TABLE'
        ? f.nextElementSibling.querySelectorAll('tbody tr').length : -1,
}))"""


def expected_marks(wh) -> dict[str, int]:
    """From the published Parquet files: one mark per non-null value the chart shows."""
    published = wh.read(schema.OUTCOME_INDICATORS)
    impact = wh.read(schema.PARTNERSHIP_IMPACT).filter(pl.col("estimand") == EVENT_TIME)
    marks = {}
    for i in REGISTRY:
        marks[f"trend-{i}"] = published.filter(pl.col("indicator_id") == i)["value"].count()
        marks[f"event-{i}"] = impact.filter(pl.col("indicator_id") == i)["estimate"].count()
    return marks


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def test_the_report_renders_offline_with_a_mark_per_published_value(sample, browser, tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["report", "--warehouse-dir", str(sample.warehouse.root), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    errors, fetched = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def only_the_file(route):
        if route.request.url != out.as_uri():
            fetched.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", only_the_file)
    page.goto(out.as_uri())
    assert errors == [] and fetched == []
    charts = page.evaluate(MARKS)
    assert {c["key"]: c["drawn"] for c in charts} == expected_marks(sample.warehouse)
    published = sample.warehouse.read(schema.OUTCOME_INDICATORS)
    places = published.get_column("county_fips").n_unique()
    for chart in charts:
        assert chart["declared"] == chart["drawn"], chart["key"]
        assert chart["label"] and str(chart["drawn"]) in chart["label"], chart["key"]
        if chart["key"].startswith("trend-"):
            assert chart["tableRows"] == places, chart["key"]  # its numbers, row by place
        else:
            assert chart["tableRows"] >= chart["drawn"], chart["key"]
    assert sum(c["drawn"] for c in charts) > 0  # the sample publishes something to draw
    shot = tmp_path / "report.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 10_000
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(SCREENSHOT_DIR) / shot.name)
    page.close()


def _chart_in_the_ui(page, base: str, asset: str, entry: str) -> tuple[int, int]:
    """Open an asset's latest materialization, then one markdown entry: the image's size."""
    page.goto(f"{base}/assets/{asset}?view=events", wait_until="networkidle")
    page.locator("tr", has_text=entry).get_by_text("[Show Markdown]").click()
    image = page.locator('img[src^="data:image/png;base64,"]').first
    image.wait_for()
    size = image.evaluate("i => i.complete ? [i.naturalWidth, i.naturalHeight] : [0, 0]")
    page.get_by_role("button", name="Close").click()
    return tuple(size)


def test_the_dagster_ui_shows_the_metadata_charts_as_images(sample, browser, tmp_path):
    env = {
        ENV_LINKAGE_KEY: TEST_KEY,
        ENV_LANDING_DIR: str(sample.landing),
        ENV_WAREHOUSE_DIR: str(sample.warehouse.root),
    }
    home, log = sample.root / "dagster_home", tmp_path / "webserver.log"
    with webserver(home, env, log) as (base, _):
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        # Dagster's first-visit dialog may open at any moment: whenever it covers the
        # page, Playwright dismisses it before the next action
        skip = page.get_by_role("button", name="Skip")
        page.add_locator_handler(skip, lambda: skip.click())
        trend = _chart_in_the_ui(page, base, "outcome_indicators", "trend_cross_sector_reach")
        event = _chart_in_the_ui(page, base, "partnership_impact",
                                 "event_study_cross_sector_reach")  # fmt: skip
        page.close()
    assert trend == event == (576, 288)  # the PNG as drawn: WIDTH_IN x HEIGHT_IN at DPI
