"""Docs generated from the declarations: they match the committed files, cover every
table the pipeline writes, and the worked example of a new indicator works."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from outcomes import docs, indicators, schema
from outcomes.schema import Zone
from pipelines.definitions import defs
from tests.test_indicators import COUNTIES, LOADED, POPULATION, spells, surveys, wages

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("name", docs.DOC_FILES)
def test_committed_docs_are_what_the_declarations_generate(name):
    committed = (DOCS / name).read_text()
    assert committed == docs.generated()[name], f"docs/{name} drifted: run `outcomes docs`"


def test_every_indicator_field_reaches_its_docs():
    text = docs.indicators_markdown()
    for ind in indicators.REGISTRY.values():
        section = text.split(f'<a id="{ind.indicator_id}"></a>')[1].split("<a id=")[0]
        for field, value in docs.definition_rows(ind):
            assert f"| {field} | {value} |" in section, (ind.indicator_id, field)
        assert ind.title in section and ind.description in section


def test_the_dictionary_covers_every_analytic_and_published_table_written(sample):
    """Every folder the pipeline wrote under analytic/ and published/, and every column of
    its Parquet files, is in the dictionary with a meaning; and the published table is
    the dictionary itself."""
    dictionary = docs.data_dictionary()
    declared = {(t, c) for t, c in dictionary.select("table", "column").iter_rows()}
    root = sample.warehouse.root
    seen = set()
    for zone in (Zone.ANALYTIC, Zone.PUBLISHED):
        for folder in sorted(p for p in (root / zone.value).iterdir() if p.is_dir()):
            files = sorted(folder.glob("**/*.parquet"))
            assert files, folder
            columns = set(pl.read_parquet_schema(files[0]))
            columns |= {"year"} if files[0].parent.name.startswith("year=") else set()
            seen |= {(folder.name, c) for c in columns}
    assert seen == declared
    assert (dictionary.get_column("meaning").str.len_chars() > 0).all()
    published = sample.warehouse.read(schema.DATA_DICTIONARY)
    assert published.equals(dictionary)


def test_a_column_without_a_meaning_is_refused(monkeypatch):
    monkeypatch.delitem(schema.MEANINGS, "wellbeing")
    with pytest.raises(ValueError, match=r"client_outcomes.*wellbeing"):
        docs.data_dictionary()


def test_column_meanings_reach_the_dagster_ui():
    node = defs.resolve_asset_graph().get(dg.AssetKey("outcome_indicators"))
    assert "Cross-sector reach" in node.description  # the definitions, in the description
    for ind in indicators.REGISTRY.values():
        assert ind.numerator in node.description


def _example():
    spec = importlib.util.spec_from_file_location("new_indicator", docs.EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MEDICAID_PARTICIPATION


def test_the_worked_example_is_one_declaration_away_from_published(monkeypatch):
    example = _example()
    monkeypatch.setitem(indicators.REGISTRY, example.indicator_id, example)
    c1, c2, c3 = COUNTIES
    rows = [  # p1 twice in 2021: counted once, in the county of the latest start
        ("m1", "p1", "MEDICAID", "2020-03-01", "2021-02-01", c1),
        ("m2", "p1", "MEDICAID", "2021-06-01", None, c2),
        ("m3", "p2", "MEDICAID", "2019-01-01", "2020-12-31", c1),  # ended before 2021
        *((f"n{k}", f"q{k}", "MEDICAID", "2021-01-01", None, c1) for k in range(11)),
        *((f"t{k}", f"r{k}", "MEDICAID", "2021-05-01", "2021-07-01", c3) for k in range(25)),
    ]
    cells = indicators.person_cells(
        2021, spells(rows), wages([]), surveys([]), POPULATION, COUNTIES, LOADED
    )
    county, _ = indicators.finalize(cells, min_cell=11)
    got = county.filter(pl.col("indicator_id") == example.indicator_id)
    by_county = {r["county_fips"]: r for r in got.iter_rows(named=True)}
    assert by_county[c1]["numerator"] == 11 and by_county[c1]["denominator"] == 4500
    assert math.isclose(by_county[c1]["value"], 11 / 4500 * 1000)
    assert by_county[c2]["suppression"] == "primary"  # 1 person: below the limit
    # and one more cell hidden with it, else ALL minus the others gives it away
    assert [r["suppression"] for r in by_county.values()].count("complementary") >= 1
    assert f"## {example.title}" in docs.indicators_markdown(indicators.REGISTRY)
