"""Linkage through Dagster: quality against the generator's truth, keys that stay put."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl

from outcomes import linkage_model as lm
from outcomes.link import IDENTITY_REGISTRY
from outcomes.linkage_quality import linkable_truth, pairwise_quality
from outcomes.schema import (
    LINKAGE_MODEL_EVENTS,
    PERSON_KEY_MERGES,
    RECORD_LINKS,
    SOURCES,
    staged_table,
)
from outcomes.warehouse import Warehouse
from tests.conftest import Materialized
from tests.handmade import write_handmade

PRECISION = 0.995  # issue 6: for every source pair and overall
RECALL = 0.98  # issue 6: every source pair, over the pairs the records can show (see below)
SOURCE_PAIRS = {"services-services", "services-spells", "services-wages", "spells-spells",
                "spells-wages", "wages-wages", "overall"}  # fmt: skip


def quality(run: Materialized, truth: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Per source pair, with every key resolved through the merges (as analysts see them)."""
    from outcomes.link import resolve

    wh = run.warehouse
    q = pairwise_quality(resolve(wh.read(RECORD_LINKS), wh.read(PERSON_KEY_MERGES)), truth)
    return {r["source_pair"]: r for r in q.iter_rows(named=True)}


def test_linkage_precision_and_recall_against_the_truth(sample: Materialized):
    from outcomes.integrate import identities
    from outcomes.link import normalised

    truth = pl.read_parquet(sample.root / "truth" / "records.parquet")
    q = quality(sample, truth)
    assert set(q) == SOURCE_PAIRS
    for pair, row in q.items():
        assert row["precision"] >= PRECISION, (pair, row)
    for pair in ("spells-spells", "wages-wages", "overall"):
        assert q[pair]["recall"] >= RECALL, (pair, q[pair])
    # every source pair, over the pairs a shared identifier connects: a wage row and an
    # enrollment with neither SSN nor birth date share only a name (linkable_truth)
    wh = sample.warehouse
    years = wh.years(RECORD_LINKS)
    staged = [wh.scan(staged_table(SOURCES[s]), years) for s in ("spells", "wages", "services")]
    shown = quality(sample, linkable_truth(normalised(identities(*staged)).collect(), truth))
    assert set(shown) == SOURCE_PAIRS
    for pair, row in shown.items():
        assert row["recall"] >= RECALL, (pair, row)
        assert row["actual"] <= q[pair]["actual"], pair


def test_model_trained_once_and_kept(sample: Materialized):
    wh = sample.warehouse
    assert lm.current_version(wh.root) == 1
    events = wh.read(LINKAGE_MODEL_EVENTS)
    assert events.height == 1 and events["event"][0] == "trained"
    model = lm.Model.load(lm.model_dir(wh.root, 1))
    assert model.trained_on > 0
    params = model.parameters()
    assert params["m_probability"].is_not_null().all()
    assert params["u_probability"].is_not_null().all()
    # every variant of the registry has a person, every record a key
    assert wh.read(IDENTITY_REGISTRY)["person_key"].null_count() == 0
    assert wh.read(RECORD_LINKS)["person_key"].null_count() == 0


def _keys(wh: Warehouse) -> pl.DataFrame:
    from outcomes.link import resolve

    links = resolve(wh.read(RECORD_LINKS), wh.read(PERSON_KEY_MERGES))
    return links.select("source", "org_id", "year", "record_id", "person_key").sort(
        "source", "org_id", "year", "record_id"
    )


def test_year_by_year_gives_the_keys_of_all_at_once(handmade: Materialized, tmp_path: Path):
    from outcomes.link import resolve
    from pipelines.runner import run_all

    settings = replace(handmade.settings, landing_dir=write_handmade(tmp_path),
                       warehouse_dir=tmp_path / "warehouse")  # fmt: skip
    wh = Warehouse(settings.warehouse_dir)
    run_all(settings, [2014], echo=lambda _: None)
    before = _keys(wh)
    run_all(settings, [2015], echo=lambda _: None)
    # with the same model file, loading 2014 then 2015 gives the keys of loading both at once
    assert _keys(wh).equals(_keys(handmade.warehouse))
    # 2014's keys changed only through recorded merges
    merges = wh.read(PERSON_KEY_MERGES)
    assert resolve(before, merges).equals(_keys(wh).filter(pl.col("year") == 2014))
    assert wh.read(LINKAGE_MODEL_EVENTS).height == 1


def test_linkage_quality_is_in_the_asset_metadata(sample: Materialized):
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(sample.root / "dagster_home"))
    event = instance.get_latest_materialization_event(dg.AssetKey(RECORD_LINKS.name))
    meta = event.asset_materialization.metadata
    for key in ("model_version", "match_threshold", "comparisons", "name_guarded_wage_pairs",
                "borderline_pairs", "cross_sector_overlap", "match_weight_histogram",
                "cluster_sizes", "linked_share_by_partner", "model_parameters"):  # fmt: skip
        assert key in meta, key
    assert "m_probability" in meta["model_parameters"].value
    for chart in ("match_weight_histogram", "cluster_sizes", "linked_share_by_partner"):
        assert "](data:image/png;base64," in meta[chart].value, chart
    assert 0 < meta["cross_sector_overlap"].value <= 1
    # at most 50 candidate pairs per new identity variant (blocking stays near linear)
    new = meta["identity_variants_new"].value
    assert meta["comparisons"].value <= 50 * max(1, new)


def test_retraining_with_relink_records_the_event_and_later_runs_keep_the_keys(
    handmade: Materialized, tmp_path: Path, monkeypatch
):
    import shutil

    from click.testing import CliRunner

    from pipelines.cli import main
    from pipelines.runner import landing_years, run_all
    from tests.conftest import TEST_KEY

    shutil.copytree(handmade.warehouse.root, tmp_path / "warehouse")
    wh = Warehouse(tmp_path / "warehouse")
    before = _keys(wh)
    args = ["linkage", "train", "--warehouse-dir", str(wh.root), "--relink"]
    monkeypatch.delenv("OUTCOMES_LINKAGE_KEY", raising=False)
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code != 0 and lm.current_version(wh.root) == 1  # no key: nothing done
    monkeypatch.setenv("OUTCOMES_LINKAGE_KEY", "another-warehouse-key-0123456789abcdefgh")
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code != 0 and lm.current_version(wh.root) == 1  # not this one's key
    monkeypatch.setenv("OUTCOMES_LINKAGE_KEY", TEST_KEY)
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "re-linked every year: 0 records changed key" in done.output
    events = wh.read(LINKAGE_MODEL_EVENTS)
    assert events["event"].to_list() == ["trained", "retrained", "relinked"]
    assert _keys(wh).equals(before)
    # a later run over the same landing zone scores with version 2 and moves no key
    settings = replace(handmade.settings, warehouse_dir=wh.root)
    run_all(settings, landing_years(settings), echo=lambda _: None)
    assert _keys(wh).equals(before)
