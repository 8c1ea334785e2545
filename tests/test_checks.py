"""Asset checks: GX suites, quarantine rate, nothing lost, changed columns."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import dagster as dg
import polars as pl
import pytest

from assets.checks import COLUMNS_UNCHANGED, NOTHING_LOST, QUARANTINE_RATE, SUITE
from assets.resources import OutcomesConfig
from assets.validate import STAGING_WRITES
from outcomes.config import ENV_EXPECTATIONS_DIR
from outcomes.schema import QUARANTINE, SOURCES, SPELLS, staged_table
from outcomes.suites import SUITES_DIR, load_suite, run_suite
from outcomes.validate import SUITE_TYPES
from pipelines.definitions import build_definitions
from tests.conftest import Materialized, materialize

BLOCKING = (SUITE, QUARANTINE_RATE, NOTHING_LOST)


def instance_of(m: Materialized) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(m.root / "dagster_home"))


def latest(
    instance: dg.DagsterInstance, table: str, check: str
) -> dict[str, dg.AssetCheckEvaluation]:
    key = dg.AssetCheckKey(dg.AssetKey(table), check)
    out = {}
    for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=1000):
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        if record.partition not in out and evaluation is not None:
            out[record.partition] = evaluation
    return out


def test_every_blocking_check_passed_on_every_partition(sample: Materialized):
    instance = instance_of(sample)
    years = {str(y) for y in sample.summary.years}
    for source in SOURCES.values():
        for check in (*BLOCKING, COLUMNS_UNCHANGED):
            results = latest(instance, staged_table(source).name, check)
            assert set(results) == years, (source.name, check)
            if check in BLOCKING:
                assert all(e.passed for e in results.values()), (source.name, check)


def test_suite_check_metadata_shows_rules_counts_and_lines_not_values(sample: Materialized):
    result = latest(instance_of(sample), "staged_wages", SUITE)
    meta = {k: v.value for r in result.values() for k, v in r.metadata.items()}
    assert meta["rows_validated"] > 0 and meta["files_validated"] >= 1
    assert "ssn:invalid" in meta["expectations"] and "ssn:invalid" in meta["top_reasons"]
    assert "| public/dwd/wages_" in meta["example_failing_lines"]
    assert str(meta["data_docs"]).endswith("index.html")
    docs = sample.warehouse.root / "restricted/data_docs/wages/index.html"
    assert docs.exists() and "wages" in docs.read_text()


def test_columns_check_warns_when_a_partner_changes_its_export(sample: Materialized):
    # the generator shuffles hearth_housing's columns and adds some: compare by set
    results = latest(instance_of(sample), "staged_services", COLUMNS_UNCHANGED)
    compared = sum(r.metadata["files_compared"].value for r in results.values())
    assert compared > 0
    assert all(r.severity == dg.AssetCheckSeverity.WARN for r in results.values())


def tightened(tmp_path, suite: str, rule: str, **kwargs) -> str:
    """A copy of the suites with one expectation's kwargs changed."""
    target = tmp_path / "expectations"
    shutil.copytree(SUITES_DIR, target)
    path = target / f"{suite}.json"
    doc = json.loads(path.read_text())
    for e in doc["expectations"]:
        if e["meta"]["rule"] == rule:
            e["kwargs"].update(kwargs)
    path.write_text(json.dumps(doc))
    return str(target)


def test_editing_a_suite_changes_quarantine_and_check(
    handmade: Materialized, tmp_path, monkeypatch
):
    """A tighter birth-date range: the quarantine grows, and the GX check run on what
    the old suite staged now fails."""
    staged = handmade.warehouse.read(staged_table(SPELLS), [2014])
    params = {
        "today": "2026-11-23",
        "year": 2014,
        "year_start": "2014-01-01",
        "year_end": "2014-12-31",
        "county_fips": ["36001", "36003", "36005"],
    }
    batches = {"hra": (staged.filter(pl.col("org_id") == "hra"), params)}
    assert run_suite("spells", batches, SPELLS.dtypes)["hra"].success

    monkeypatch.setenv(
        ENV_EXPECTATIONS_DIR,
        tightened(tmp_path, "spells", "birth_date:out_of_range", min_value="1985-01-01"),
    )
    assert load_suite("spells") != json.loads((SUITES_DIR / "spells.json").read_text())
    failed = run_suite("spells", batches, SPELLS.dtypes)["hra"]
    assert not failed.success
    assert [o.rule for o in failed.failed] == ["birth_date:out_of_range"]

    # the same edit, through Dagster: hra's persons born 1980-1984 (S01-S05, S21-S25),
    # plus the row born in 2099 that the range always caught
    again = materialize(handmade.landing, tmp_path / "warehouse", max_quarantine_share=1.0)
    quarantine = again.warehouse.read(QUARANTINE, [2014])
    by_rule = quarantine.filter(pl.col("reasons").list.contains("birth_date:out_of_range"))
    assert by_rule.height == 10 + 1
    kept = again.warehouse.read(staged_table(SPELLS), [2014])
    assert kept.filter(pl.col("birth_date") < pl.date(1985, 1, 1)).is_empty()


def test_suite_check_fails_on_staged_data_the_edited_suite_rejects(
    handmade: Materialized, tmp_path, monkeypatch
):
    """The Dagster check reads the suite file: data staged under the old suite now fails."""
    wh = tmp_path / "warehouse"
    shutil.copytree(handmade.warehouse.root, wh)
    monkeypatch.setenv(
        ENV_EXPECTATIONS_DIR,
        tightened(tmp_path, "spells", "birth_date:out_of_range", min_value="1985-01-01"),
    )
    config = OutcomesConfig.from_settings(replace(handmade.settings, warehouse_dir=wh))
    key = dg.AssetCheckKey(dg.AssetKey("staged_spells"), SUITE)
    staging = dg.AssetSelection.assets(*(t.name for t in STAGING_WRITES)).without_checks()
    only_check = dg.define_asset_job(
        "only_check", selection=staging | dg.AssetSelection.checks(key)
    )
    defs = dg.Definitions.merge(build_definitions(config), dg.Definitions(jobs=[only_check]))
    # staging compiles the suite as it was shipped (as when the rows were staged); the
    # check's GX reads the edited file
    shipped = lambda name: json.loads((SUITES_DIR / f"{name}.json").read_text())  # noqa: E731
    monkeypatch.setattr("outcomes.validate.load_suite", shipped)
    result = defs.resolve_job_def("only_check").execute_in_process(
        partition_key="2014", raise_on_error=False
    )
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == SUITE
    ]
    assert evaluations and not evaluations[0].passed
    assert "birth_date:out_of_range" in evaluations[0].metadata["expectations"].value
    assert not result.success  # blocking: what depends on staged_spells would not run


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_suite_rule_names_a_schema_column_once(source: str):
    """GX silently keeps one of two expectations of one type on one column."""
    suite = load_suite(source)
    columns = set(SOURCES[source].column_names)
    domains = [
        (e["type"], e["kwargs"].get("column"), e["kwargs"].get("column_A"))
        for e in suite["expectations"]
    ]
    assert len(domains) == len(set(domains))
    for e in suite["expectations"]:
        kw = e["kwargs"]
        for c in (kw.get("column"), kw.get("column_A"), kw.get("column_B")):
            assert c is None or c in columns, (source, c)


@pytest.mark.parametrize("source", list(SOURCES))
def test_suite_declares_every_contract_type(source: str):
    """Parse rules live in the suite too; the warehouse schema must agree with it."""
    declared = {
        e["kwargs"]["column"]: SUITE_TYPES[e["kwargs"]["type_"]]
        for e in load_suite(source)["expectations"]
        if e["type"] == "expect_column_values_to_be_of_type"
    }
    typed = {c.name: c.dtype for c in SOURCES[source].columns if c.dtype != pl.String}
    assert declared == typed


def _surveys() -> pl.DataFrame:
    """Staged client surveys: partner A names C1 and C2, partner B names C2."""
    from outcomes.schema import CLIENT_SURVEYS

    staged = pl.DataFrame(
        {"org_id": ["A", "B", "A"], "response_id": ["r1", "r1", "r3"],
         "client_id": ["C1", "C2", "C2"], "survey_date": ["2020-03-01"] * 3,
         "wave": ["BASELINE"] * 3},
    ).with_columns(pl.col("survey_date").str.to_date())  # fmt: skip
    schema = staged_table(CLIENT_SURVEYS).schema
    return staged.select(pl.col(c).cast(t) if c in staged.columns else pl.lit(None, t).alias(c)
                         for c, t in schema.items())  # fmt: skip


def test_one_gx_batch_per_source_year_still_checks_each_partners_own_clients():
    """The suite check validates a source-year in one batch: a client is known to its own
    partner only, so C2 of partner A fails although partner B knows a C2; an id is unique
    in its own file, so two partners may both have a response r1."""
    from outcomes.schema import CLIENT_SURVEYS
    from outcomes.suites import in_org

    surveys, staged = CLIENT_SURVEYS.dtypes, _surveys()
    params = {"year_start": "2020-01-01", "year_end": "2020-12-31",
              "known_clients": [in_org("A", "C1"), in_org("B", "C2")]}  # fmt: skip
    ok = run_suite("client_surveys", {"y": (staged.head(2), params)}, surveys)["y"]
    assert ok.success, ok.failed
    bad = run_suite("client_surveys", {"y": (staged, params)}, surveys)["y"]
    assert [(o.rule, o.column) for o in bad.failed] == [("client_id:unknown_client", "client_id")]
    twice = staged.head(2).with_columns(org_id=pl.lit("B"), client_id=pl.lit("C2"))
    dup = run_suite("client_surveys", {"y": (twice, params)}, surveys)["y"]
    assert [o.rule for o in dup.failed] == ["duplicate_response_id"]


def test_the_year_batch_hands_gx_only_the_known_clients_its_rows_name():
    """A partner's other known clients cannot change the result, so they stay out of the
    value set; the unknown C2 of partner A still fails."""
    from assets.validate import YearParameters
    from outcomes.schema import CLIENT_SURVEYS
    from outcomes.suites import in_org

    staged = _surveys()
    known = {"A": ["C1", "C3"], "B": ["C2", "C4"]}
    params = YearParameters(CLIENT_SURVEYS, 2020, pl.LazyFrame({"county_fips": ["01001"]}),
                            pl.LazyFrame({"partnership_id": ["P1"]}), known).of_year(staged)
    assert params["known_clients"] == [in_org("A", "C1"), in_org("B", "C2")]
    bad = run_suite("client_surveys", {"y": (staged, params)}, CLIENT_SURVEYS.dtypes)["y"]
    assert [(o.rule, o.column) for o in bad.failed] == [("client_id:unknown_client", "client_id")]
    ok = run_suite("client_surveys", {"y": (staged.head(2), params)}, CLIENT_SURVEYS.dtypes)["y"]
    assert ok.success, ok.failed
