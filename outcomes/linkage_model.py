"""The Fellegi-Sunter linkage model (Splink 5, DuckDB): comparisons, blocking, training, scoring.

One model serves every year: it is trained once (EM, with deterministic rules
for the prior and random sampling for u), saved as a versioned JSON file with
its term-frequency tables in the restricted zone, and every later year scores
with that file, so keys do not move because a model was silently retrained.

Records enter as *identity variants*: one row per distinct normalised identity
(outcomes.normalise) and id space, so a person's hundred wage rows are one
variant, and a year is scored against the registry's variants, not its records.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import math
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from outcomes.schema import LINKAGE_MODEL_EVENTS
from outcomes.warehouse import Warehouse
from outcomes.zones import owner_only

UNIQUE_ID = "variant"
DUCKDB_MEMORY_LIMIT = "2GB"  # Splink's DuckDB spills past this
# identity columns a variant carries into the model (and the registry)
VARIANT_COLUMNS: dict[str, pl.DataType] = {
    "variant": pl.String(),
    "source": pl.String(),
    "id_space": pl.String(),
    "first_name": pl.String(),
    "last_name": pl.String(),
    "last_parts": pl.List(pl.String()),
    "first_forms": pl.List(pl.String()),
    "birth_date": pl.Date(),
    "sex": pl.String(),
    "zip": pl.String(),
    "ssn": pl.String(),
    "county_fips": pl.String(),
}
TF_COLUMNS = ("first_name", "last_name")

# A pair links when its match weight reaches this (log2 Bayes factor; probability ~0.985).
MATCH_THRESHOLD = 6.0
REVIEW_BAND = 2.0  # |weight - threshold| within this: written for clerical review
TRAINING_SAMPLE = 300_000  # variants a model is trained on at most (a deterministic sample)
U_MAX_PAIRS = 2_000_000
U_SEED = 42
MODEL_FORMAT = 1
EM_MAX_ITERATIONS = 25
# a level training never saw among matches (m) or among random pairs (u) gets this
M_FLOOR, U_FLOOR = 1e-4, 1e-7
# the wage name guard: a wage row whose names disagree like this does not link on SSN alone
GUARD_JARO_WINKLER = 0.8


SWAPPED = "swapped with the other name"


def _jw(col: str, threshold: float) -> str:
    return f'jaro_winkler_similarity("{col}_l", "{col}_r") >= {threshold}'


def _name_comparison(col: str, other: str, extra: list[dict[str, Any]]) -> dict[str, Any]:
    levels = [
        {"sql_condition": f'"{col}_l" IS NULL OR "{col}_r" IS NULL', "label_for_charts": "null",
         "is_null_level": True},
        {"sql_condition": f'"{col}_l" = "{col}_r"', "label_for_charts": "exact",
         "tf_adjustment_column": col, "tf_adjustment_weight": 1.0},
        {"sql_condition": f'"{col}_l" = "{other}_r" AND "{other}_l" = "{col}_r"',
         "label_for_charts": SWAPPED},
        *extra,
        {"sql_condition": _jw(col, 0.92), "label_for_charts": "Jaro-Winkler >= 0.92"},
        {"sql_condition": _jw(col, 0.80), "label_for_charts": "Jaro-Winkler >= 0.80"},
        {"sql_condition": "ELSE", "label_for_charts": "different"},
    ]  # fmt: skip
    return {"output_column_name": col, "comparison_levels": levels}


def _simple(col: str, partial: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "output_column_name": col,
        "comparison_levels": [
            {"sql_condition": f'"{col}_l" IS NULL OR "{col}_r" IS NULL',
             "label_for_charts": "null", "is_null_level": True},
            {"sql_condition": f'"{col}_l" = "{col}_r"', "label_for_charts": "exact"},
            *(partial or []),
            {"sql_condition": "ELSE", "label_for_charts": "different"},
        ],
    }  # fmt: skip


def _dob(part: str, side: str) -> str:
    return f'{part}("birth_date_{side}")'


COMPARISONS: list[dict[str, Any]] = [
    _name_comparison("first_name", "last_name", [
        {"sql_condition": 'list_has_any("first_forms_l", "first_forms_r")',
         "label_for_charts": "nickname of the same name"},
    ]),
    _name_comparison("last_name", "first_name", [
        {"sql_condition": 'list_has_any("last_parts_l", "last_parts_r")',
         "label_for_charts": "a part of a compound surname"},
    ]),
    _simple("birth_date", [
        {"sql_condition": f"{_dob('year', 'l')} = {_dob('year', 'r')} AND "
                          f"{_dob('month', 'l')} = {_dob('day', 'r')} AND "
                          f"{_dob('day', 'l')} = {_dob('month', 'r')}",
         "label_for_charts": "day and month transposed"},
        {"sql_condition": "damerau_levenshtein(strftime(\"birth_date_l\", '%Y%m%d'), "
                          "strftime(\"birth_date_r\", '%Y%m%d')) <= 1",
         "label_for_charts": "one digit off"},
        {"sql_condition": f"{_dob('month', 'l')} = {_dob('month', 'r')} AND "
                          f"{_dob('day', 'l')} = {_dob('day', 'r')} AND "
                          f"abs({_dob('year', 'l')} - {_dob('year', 'r')}) = 1",
         "label_for_charts": "year off by one"},
    ]),
    _simple("sex"),
    _simple("zip"),
    _simple("ssn", [
        # a transposition only: twins' numbers, often consecutive, differ by a substitution
        {"sql_condition": 'damerau_levenshtein("ssn_l", "ssn_r") = 1 '
                          'AND levenshtein("ssn_l", "ssn_r") = 2',
         "label_for_charts": "two adjacent digits transposed"},
    ]),
    _simple("county_fips"),
]  # fmt: skip

# Candidate pairs: each rule is a join on equal values; together they stay near linear.
SAME_SSN = 'l."ssn" = r."ssn"'
BLOCKING_RULES = [
    SAME_SSN,
    'substr(l."ssn", 1, 5) = substr(r."ssn", 1, 5) AND l."first_name" = r."first_name"',
    'substr(l."ssn", 6, 4) = substr(r."ssn", 6, 4) AND l."first_name" = r."first_name"',
    'l."birth_date" = r."birth_date" AND l."last_name" = r."last_name"',
    'l."birth_date" = r."birth_date" AND l."first_forms"[1] = r."first_forms"[1]',
    'l."first_forms"[1] = r."first_forms"[1] AND l."last_name" = r."last_name" '
    'AND year(l."birth_date") = year(r."birth_date")',
    'l."first_forms"[1] = r."first_forms"[1] AND l."last_name" = r."last_name" '
    'AND l."county_fips" = r."county_fips"',
    'l."first_name" = r."last_name" AND l."last_name" = r."first_name"',
]
# Deterministic rules for the prior (probability that two random records match).
PRIOR_RULES = [
    'l."ssn" = r."ssn" AND l."birth_date" = r."birth_date"',
    'l."first_name" = r."first_name" AND l."last_name" = r."last_name" '
    'AND l."birth_date" = r."birth_date"',
]
PRIOR_RECALL = 0.8
EM_BLOCKS = [
    SAME_SSN,
    'l."birth_date" = r."birth_date" AND l."last_name" = r."last_name"',
    'l."first_name" = r."first_name" AND l."last_name" = r."last_name"',
]


# Starting values, level by level (null level excluded, strongest first): EM refines
# them; a warehouse with too few records to train on links with them as they are.
START_MU: dict[str, list[tuple[float, float]]] = {
    "first_name": [(0.90, 0.01), (0.002, 1e-5), (0.04, 0.002), (0.03, 0.003), (0.02, 0.02),
                   (0.008, 0.965)],
    "last_name": [(0.90, 0.005), (0.002, 1e-5), (0.04, 0.001), (0.03, 0.003), (0.02, 0.02),
                  (0.008, 0.971)],
    "birth_date": [(0.90, 0.0005), (0.03, 1e-5), (0.03, 0.001), (0.02, 1e-4), (0.02, 0.9984)],
    "sex": [(0.97, 0.5), (0.03, 0.5)],
    "zip": [(0.80, 0.02), (0.20, 0.98)],
    "ssn": [(0.97, 1e-6), (0.02, 1e-5), (0.01, 0.999989)],
    "county_fips": [(0.90, 0.1), (0.10, 0.9)],
}  # fmt: skip
START_PRIOR = 1e-4
MIN_TRAINING_VARIANTS = 1_000  # fewer: EM has too few matches to learn from


def settings() -> dict[str, Any]:
    comparisons = json.loads(json.dumps(COMPARISONS))
    for comp in comparisons:
        levels = [lv for lv in comp["comparison_levels"] if not lv.get("is_null_level")]
        for lv, (m, u) in zip(levels, START_MU[comp["output_column_name"]], strict=True):
            lv["m_probability"], lv["u_probability"] = m, u
    return _swap_counted_once({
        "probability_two_random_records_match": START_PRIOR,
        "link_type": "dedupe_only",
        "unique_id_column_name": UNIQUE_ID,
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": BLOCKING_RULES,
        "additional_columns_to_retain": ["source", "id_space"],
        "retain_intermediate_calculation_columns": False,
        "retain_matching_columns": False,
        # EM stops early: a level no match shows would otherwise decay below float range
        "max_iterations": EM_MAX_ITERATIONS,
        "em_convergence": 1e-4,
    })


@dataclass
class Model:
    """A trained model: Splink's JSON and the term frequencies it was trained with."""

    splink: dict[str, Any]
    term_frequencies: dict[str, pl.DataFrame]
    trained_on: int  # variants

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for col, tf in self.term_frequencies.items():
            tf.write_parquet(folder / f"tf_{col}.parquet")
        doc = {"format": MODEL_FORMAT, "trained_on": self.trained_on, "splink": self.splink}
        (folder / "model.json").write_text(json.dumps(doc, indent=1, sort_keys=True))
        owner_only(folder)

    @classmethod
    def load(cls, folder: Path) -> Model:
        doc = json.loads((folder / "model.json").read_text())
        tfs = {c: pl.read_parquet(folder / f"tf_{c}.parquet") for c in TF_COLUMNS}
        return cls(doc["splink"], tfs, doc["trained_on"])

    def parameters(self) -> pl.DataFrame:
        """m and u of every comparison level, and the weight they give."""
        rows = []
        for comp in self.splink["comparisons"]:
            for lvl in comp["comparison_levels"]:
                if lvl.get("is_null_level"):
                    continue
                m, u = lvl.get("m_probability"), lvl.get("u_probability")
                rows.append({
                    "comparison": comp["output_column_name"],
                    "level": lvl["label_for_charts"],
                    "m_probability": m,
                    "u_probability": u,
                    "match_weight": math.log2(m / u) if m and u else None,
                })  # fmt: skip
        return pl.DataFrame(rows)

    @property
    def prior_weight(self) -> float:
        p = self.splink["probability_two_random_records_match"]
        return math.log2(p / (1 - p))


def term_frequencies(variants: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {
        col: variants.drop_nulls(col)
        .group_by(col)
        .len()
        .select(col, (pl.col("len") / pl.col("len").sum()).alias(f"tf_{col}"))
        .sort(col)
        for col in TF_COLUMNS
    }


def _exact_u(model: dict[str, Any], col: str) -> float:
    comp = next(c for c in model["comparisons"] if c["output_column_name"] == col)
    return next(lv["u_probability"] for lv in comp["comparison_levels"]
                if lv.get("tf_adjustment_column") == col)  # fmt: skip


def _tf_lookup(tf: pl.DataFrame, col: str, neutral: float, *frames: pl.DataFrame) -> pl.DataFrame:
    """The trained term frequencies, plus every name unseen in training at the rarest one;
    with no trained frequencies, every name at `neutral` (no adjustment)."""
    floor = tf.get_column(f"tf_{col}").min() if tf.height else neutral
    seen = pl.concat([f.select(col) for f in frames]).drop_nulls().unique()
    unseen = seen.join(tf, on=col, how="anti").with_columns(pl.lit(floor).alias(f"tf_{col}"))
    return pl.concat([tf, unseen]).sort(col)


def _db():
    import duckdb
    from splink import DuckDBAPI

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("SET preserve_insertion_order = false")
    # DuckDB would take 80% of the machine; past this it spills to disk instead
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    spill = Path(tempfile.gettempdir()) / "outcomes-duckdb"
    con.execute(f"SET temp_directory = '{spill}'")
    return DuckDBAPI(connection=con)


def _release(db: Any) -> None:
    """Close Splink's DuckDB and collect: Splink's objects hold the registered Arrow tables
    in reference cycles, and a state-sized year's would otherwise stay in memory."""
    db._con.close()
    gc.collect()


def _quiet() -> None:
    import logging

    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.ERROR)


def training_sample(variants: pl.DataFrame, n: int = TRAINING_SAMPLE) -> pl.DataFrame:
    """A deterministic sample: the same variants always give the same training set."""
    if variants.height <= n:
        return variants.sort(UNIQUE_ID)
    return (
        variants.with_columns(pl.col(UNIQUE_ID).hash(seed=7).alias("_h"))
        .sort("_h", UNIQUE_ID)
        .head(n)
        .drop("_h")
        .sort(UNIQUE_ID)
    )


def train(variants: pl.DataFrame) -> Model:
    """Fit m and u by EM (u by random sampling, the prior by deterministic rules).

    With fewer than MIN_TRAINING_VARIANTS variants the starting values are kept as
    they are, without term-frequency adjustment (`trained_on` is 0). An EM session
    that fails (Splink 5.0 refuses an m it computed below 1e-300, which happens
    when a level is all but unseen among matches) is skipped: the model keeps
    the estimates of the sessions before it, and `_with_floors` gives such levels a
    small probability, so every level still counts.
    """
    from splink import Linker

    _quiet()
    sample = training_sample(variants.select(list(VARIANT_COLUMNS)))
    tfs = term_frequencies(sample)
    if sample.height < MIN_TRAINING_VARIANTS:
        return Model(settings(), term_frequencies(sample.clear()), 0)
    db = _db()
    sdf = db.register(sample.to_arrow(), table_name="training_variants")
    tf_tables = {
        c: db.register(tf.to_arrow(), table_name=f"tf_lookup_{c}") for c, tf in tfs.items()
    }

    def linker_from(model: dict[str, Any]) -> Linker:
        linker = Linker(sdf, model, log_level="ERROR")
        for col, table in tf_tables.items():
            linker.table_management.register_term_frequency_lookup(table, col)
        return linker

    linker = linker_from(settings())
    linker.training.estimate_probability_two_random_records_match(PRIOR_RULES, PRIOR_RECALL)
    linker.training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=U_SEED)
    good = linker.misc.save_model_to_json()
    for rule in EM_BLOCKS:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True
            )
            good = linker.misc.save_model_to_json()
        except ValueError:
            linker = linker_from(good)
    _release(db)
    return Model(_swap_counted_once(_with_floors(good)), tfs, sample.height)


def _with_floors(model: dict[str, Any]) -> dict[str, Any]:
    """Every non-null level gets an m and a u: one that training never saw gets the floor."""
    for comp in model["comparisons"]:
        levels = [lv for lv in comp["comparison_levels"] if not lv.get("is_null_level")]
        for p, floor in (("m_probability", M_FLOOR), ("u_probability", U_FLOOR)):
            for lv in levels:
                if not isinstance(lv.get(p), int | float) or lv[p] < floor:
                    lv[p] = floor
            total = sum(lv[p] for lv in levels)
            for lv in levels:
                lv[p] = lv[p] / total
    return model


SWAP_COUNTED_IN = "first_name"  # names swapped: one piece of evidence, weighed once


def _swap_counted_once(model: dict[str, Any]) -> dict[str, Any]:
    """First and last name swapped shows in both name comparisons; it is one observation,
    so the other comparison's swapped level weighs nothing (m = u): counted twice it would
    outweigh a birth date that disagrees."""
    for comp in model["comparisons"]:
        name = comp["output_column_name"]
        if name in TF_COLUMNS and name != SWAP_COUNTED_IN:
            for lv in comp["comparison_levels"]:
                if lv["label_for_charts"] == SWAPPED:
                    lv["m_probability"] = lv["u_probability"]
    return model


def score(model: Model, new: pl.DataFrame, known: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Scored candidate pairs (new against known variants, and new among themselves) and
    how many candidate pairs the blocking rules gave.

    The pairs have variant_l, variant_r, source_l, source_r, match_weight, each
    comparison's weight (mw_*) and whether their names were compared and disagree.
    Kept: pairs near or above the threshold, and every pair with the same SSN (the wage
    name guard must see those however low their weight). Splink sees each variant by its
    rank, an integer: the text ids would fill DuckDB's memory in a state-sized year.
    """
    from splink import Linker
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    _quiet()
    db = _db()
    new = new.sort(UNIQUE_ID)
    ids = pl.concat([new.get_column(UNIQUE_ID), known.get_column(UNIQUE_ID)])
    cols = list(VARIANT_COLUMNS)
    frames = {
        side: f.select(cols).with_columns(pl.int_range(f.height).alias(UNIQUE_ID) + offset)
        for side, f, offset in (("new", new, 0), ("known", known, new.height))
    }
    sdfs = {k: db.register(v.to_arrow(), table_name=f"variants_{k}") for k, v in frames.items()}
    # the comparison levels and the names are kept: the name guard and the reviewers read them
    scoring = {**model.splink, "retain_intermediate_calculation_columns": True,
               "retain_matching_columns": True}  # fmt: skip
    linker = Linker(sdfs["new"], scoring, log_level="ERROR")
    for col, tf in model.term_frequencies.items():
        lookup = _tf_lookup(tf, col, _exact_u(model.splink, col), *frames.values())
        linker.table_management.register_term_frequency_lookup(
            db.register(lookup.to_arrow(), table_name=f"tf_lookup_{col}"), col
        )
    sides: list[list[Any]] = [[sdfs["new"]]]
    if known.height:
        sides.append([sdfs["new"], sdfs["known"]])
    floor = MATCH_THRESHOLD - REVIEW_BAND
    out, candidates = [], 0
    for side in sides:
        predict = (linker.inference.predict_within if len(side) == 1
                   else linker.inference.predict_between)  # fmt: skip
        for rules, threshold in ((BLOCKING_RULES, floor), ([SAME_SSN], None)):
            p = predict(*side, blocking_rules_to_generate_predictions=rules,
                        threshold_match_weight=threshold, warning_mode="never")  # fmt: skip
            out.append(_pair_frame(db, p.physical_name))
            p.drop_table_from_database_and_remove_from_cache()
        counts = count_comparisons_from_blocking_rules(
            side if len(side) > 1 else side[0], blocking_rules=BLOCKING_RULES,
            link_type="link_only" if len(side) > 1 else "dedupe_only",
            unique_id_column_name=UNIQUE_ID, record_sample_proportion=1.0,
        )  # fmt: skip
        candidates += counts[-1]["cumulative_comparison_count"]
    _release(db)
    ends = [f"{UNIQUE_ID}_l", f"{UNIQUE_ID}_r"]
    pairs = pl.concat(out, how="vertical_relaxed").unique(ends)  # both passes keep some
    back = {e: ids.gather(pairs.get_column(e)) for e in ends}  # ranks back to variant ids
    return pairs.with_columns(**back).sort(ends), candidates


def no_pairs() -> pl.DataFrame:
    """What `score` returns when there is nothing new to score."""
    return pl.DataFrame(
        schema={
            "variant_l": pl.String, "variant_r": pl.String, "source_l": pl.String,
            "source_r": pl.String, **{f"mw_{c['output_column_name']}": pl.Float64
                                      for c in COMPARISONS},
            "match_weight": pl.Float64, "ssn_exact": pl.Boolean,
            "first_names_differ": pl.Boolean, "names_compared": pl.Boolean,
            "names_disagree": pl.Boolean,
        }
    )  # fmt: skip


def _pair_frame(db: Any, table: str) -> pl.DataFrame:
    """A predictions table as pairs: ids, sources, weights, and the name guard's flags
    (the same valid SSN; both names given; both disagree: Jaro-Winkler below the guard's
    level, no nickname, swap or surname part in common)."""
    weights = ", ".join(f'"mw_{c["output_column_name"]}"' for c in COMPARISONS)
    t = GUARD_JARO_WINKLER
    names_given = ("first_name_l IS NOT NULL AND first_name_r IS NOT NULL "
                   "AND last_name_l IS NOT NULL AND last_name_r IS NOT NULL")  # fmt: skip
    not_swapped = "NOT (first_name_l = last_name_r AND last_name_l = first_name_r)"
    first_differ = (f"jaro_winkler_similarity(first_name_l, first_name_r) < {t} "
                    f"AND NOT list_has_any(first_forms_l, first_forms_r) AND {not_swapped}")
    sql = f"""
        SELECT {UNIQUE_ID}_l, {UNIQUE_ID}_r, source_l, source_r, {weights},
          CAST(match_weight AS DOUBLE) AS match_weight,
          coalesce(ssn_l = ssn_r, false) AS ssn_exact,
          coalesce({first_differ}, false) AS first_names_differ,
          coalesce({names_given}, false) AS names_compared,
          coalesce({names_given} AND {first_differ}
            AND jaro_winkler_similarity(last_name_l, last_name_r) < {t}
            AND NOT list_has_any(last_parts_l, last_parts_r), false) AS names_disagree
        FROM {table}
    """  # fmt: skip
    return pl.from_arrow(db._con.sql(sql).to_arrow_table())


# ---------------------------------------------------------------- the model file, versioned

MODELS_DIR = "restricted/linkage/models"


def model_dir(warehouse_root: Path, version: int) -> Path:
    return Path(warehouse_root) / MODELS_DIR / f"v{version:04d}"


def current_version(warehouse_root: Path) -> int | None:
    """The newest saved model version, or None when the warehouse has none."""
    base = Path(warehouse_root) / MODELS_DIR
    versions = sorted(int(p.name[1:]) for p in base.glob("v[0-9]*") if (p / "model.json").exists())
    return versions[-1] if versions else None


def save_new_version(warehouse_root: Path, model: Model) -> int:
    """Write the model as the next version (written beside, then renamed)."""
    version = (current_version(warehouse_root) or 0) + 1
    target = model_dir(warehouse_root, version)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        model.save(tmp)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return version


def train_version(warehouse: Warehouse, variants: pl.DataFrame, reason: str) -> tuple[int, Model]:
    """Train a model, save it as the warehouse's next version and record the event."""
    model = train(variants)
    version = save_new_version(warehouse.root, model)
    record_event(warehouse, version, "trained" if version == 1 else "retrained", reason)
    return version, model


def record_event(warehouse: Warehouse, version: int, event: str, reason: str) -> None:
    """A row of linkage_model_events: a model changed or was applied to history, never silently."""
    model_file = model_dir(warehouse.root, version) / "model.json"
    row = pl.DataFrame(
        {
            "version": [version],
            "event": [event],
            "at": [dt.datetime.now(dt.UTC)],
            "trained_on": [json.loads(model_file.read_text())["trained_on"]],
            "model_sha256": [hashlib.sha256(model_file.read_bytes()).hexdigest()],
            "reason": [reason],
        }
    )
    events = pl.concat([warehouse.read(LINKAGE_MODEL_EVENTS), row], how="vertical_relaxed")
    warehouse.write(LINKAGE_MODEL_EVENTS, events)
