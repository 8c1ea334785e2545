"""What evaluators read besides the tables: charts in the Dagster UI, provenance of every
published indicator-year, and the HTML report (its content; tests/test_report_browser.py
renders it)."""

from __future__ import annotations

import base64
import html
import re

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from assets.common import materialized
from outcomes import provenance, schema
from outcomes.docs import indicators_markdown
from outcomes.impact import EVENT_TIME
from outcomes.indicators import REGISTRY, input_files
from outcomes.report import gather, render
from pipelines.cli import main

YEAR = 2021
IMAGE = re.compile(r"!\[([^\]]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def _instance(sample) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(sample.root / "dagster_home"))


def test_the_indicators_asset_shows_a_trend_chart_per_indicator(sample):
    published = sample.warehouse.read(schema.OUTCOME_INDICATORS)
    last = str(max(published.get_column("year")))
    meta = materialized(_instance(sample), schema.OUTCOME_INDICATORS.name, last)
    for ind in REGISTRY.values():
        md = meta[f"trend_{ind.indicator_id}"]
        image = IMAGE.match(md)
        assert image and base64.b64decode(image.group(2)).startswith(b"\x89PNG")
        # the text alternative counts what is drawn: the published values of every year
        shown = published.filter(pl.col("indicator_id") == ind.indicator_id)
        assert f"{shown.get_column('value').is_not_null().sum()} published values" in md
        counties = shown.get_column("county_fips").n_unique()
        assert md.count("\n| ") == counties + 1  # header and one row per county and ALL


def test_the_impact_asset_shows_an_event_study_per_indicator(sample):
    impact = sample.warehouse.read(schema.PARTNERSHIP_IMPACT)
    meta = materialized(_instance(sample), schema.PARTNERSHIP_IMPACT.name, None)
    for ind in REGISTRY.values():
        md = meta[f"event_study_{ind.indicator_id}"]
        effects = impact.filter(
            pl.col("indicator_id") == ind.indicator_id, pl.col("estimand") == EVENT_TIME
        )
        drawn = effects.get_column("estimate").is_not_null().sum()
        assert IMAGE.match(md) and f"{drawn} published event-time effects" in md


def test_provenance_names_the_files_code_and_run_behind_an_indicator_year(sample):
    ind = REGISTRY["employment_q2_after_exit"]  # spells and services, and wages
    result = CliRunner().invoke(
        main,
        ["provenance", ind.indicator_id, str(YEAR), "--warehouse-dir",
         str(sample.warehouse.root)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ledger = sample.warehouse.read(schema.LOAD_LEDGER)
    wanted = [
        (source, year)
        for name in ind.sources
        for source, years in input_files(YEAR)[name].items()
        for year in years
    ]
    files = ledger.join(
        pl.DataFrame(wanted, schema=["source", "year"], orient="row"), on=["source", "year"]
    )
    assert {"wages", "services"} <= set(files.get_column("source"))
    listed = re.findall(r"^  ([0-9a-f]{64})  (\S+)$", result.output, flags=re.M)
    assert sorted(listed) == sorted(files.select("file_sha256", "file").iter_rows())
    assert not any(f.startswith("nonprofit/") and "/surveys_" in f for _, f in listed)
    run_id = re.search(r"Dagster run (\S+), code (\S+)", result.output)
    assert run_id.group(2) == provenance.code_version()
    run = _instance(sample).get_run_by_id(run_id.group(1))
    assert run is not None and run.job_name == "publish_indicators"
    # one run computes every year's indicators: its partition range holds this one
    first = run.tags.get("dagster/asset_partition_range_start", run.tags.get("dagster/partition"))
    last = run.tags.get("dagster/asset_partition_range_end", first)
    assert int(first) <= YEAR <= int(last)


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [(["nope", "2021"], 2, "unknown indicator"), (["tanf_return_12m", "1999"], 1, "no prov")],
)
def test_provenance_of_what_was_not_published_is_a_clear_error(sample, args, code, says):
    cli = ["provenance", *args, "--warehouse-dir", str(sample.warehouse.root)]
    result = CliRunner().invoke(main, cli)
    assert result.exit_code == code and says in result.output


def test_the_report_holds_published_numbers_and_no_microdata(sample):
    wh = sample.warehouse
    page = render(gather(wh))
    published = wh.read(schema.OUTCOME_INDICATORS)
    for ind in REGISTRY.values():
        assert f'<section id="{ind.indicator_id}"' in page and html.escape(ind.numerator) in page
        assert f'data-chart="trend-{ind.indicator_id}"' in page
        assert f'data-chart="event-{ind.indicator_id}"' in page
    # a published value reads in a chart's table; a suppressed one only as "suppressed"
    shown = published.filter(pl.col("value").is_not_null(), pl.col("county_fips") != "ALL")
    value = shown.row(0, named=True)["value"]
    rounded = round(value, 3 if REGISTRY[shown.row(0, named=True)["indicator_id"]].kind ==
                    "proportion" else 2)  # fmt: skip
    assert f">{rounded}<" in page
    # the page's words, but for those of the definitions (a Wilson interval is no person)
    words = set(re.findall(r"[\w-]+", page)) - set(re.findall(r"[\w-]+", indicators_markdown()))
    for table, column in [
        (schema.SERVICE_SPELLS, "person_key"),
        (schema.LINKED_SPELLS, "record_id"),
        (schema.staged_table(schema.SPELLS), "last_name"),
    ]:
        values = set(wh.scan(table).select(column).unique().collect().to_series().drop_nulls())
        assert not values & words, (table.name, column)
    assert "<script" not in page and "src=" not in page  # nothing is fetched
