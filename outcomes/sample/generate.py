"""generate(): a sample landing zone and, beside it, the ground truth that made it."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from outcomes.sample import files
from outcomes.sample.config import (
    DCF,
    DHS,
    DWD,
    PARTNERS,
    PARTNERSHIP_SURVEY_FORMATS,
    OrgSpec,
    SampleConfig,
)
from outcomes.sample.events import (
    iter_wages,
    make_client_surveys,
    make_enrollments,
    make_partnership_surveys,
    make_spells,
    true_reach,
)
from outcomes.sample.identity import register_org
from outcomes.sample.plant import FileContext, Planter, quarantined, shuffle
from outcomes.sample.util import person_id, rng_for
from outcomes.sample.world import World, make_world
from outcomes.sample.write import dtypes_for, style, write_frame, write_mapping
from outcomes.schema import (
    CLIENT_SURVEYS,
    PARTNERSHIP_SURVEYS,
    SERVICES,
    SPELLS,
    WAGES,
    Source,
)

MIN_SCALE = 100
MIN_YEARS = 4  # partnerships start in years 2, 3 and 4 of the range
TRUTH_SCHEMA = pa.schema([
    ("source", pa.string()), ("org_id", pa.string()), ("year", pa.int32()),
    ("file", pa.string()), ("line", pa.int64()), ("record_id", pa.string()),
    ("true_person_id", pa.string()), ("planted", pa.string()), ("quarantined", pa.bool_()),
    ("noise", pa.string()),
])


class TruthWriter:
    """records.parquet, appended file by file so memory stays flat at large scales."""

    def __init__(self, path: Path) -> None:
        self.writer = pq.ParquetWriter(path, TRUTH_SCHEMA, compression="zstd")
        self.rows: Counter[str] = Counter()
        self.bad: Counter[str] = Counter()
        self.planted: Counter[str] = Counter()
        self.files = 0

    def add(self, frame: pl.DataFrame) -> None:
        table = frame.to_arrow().select(TRUTH_SCHEMA.names).cast(TRUTH_SCHEMA)
        self.writer.write_table(table)
        source = frame["source"][0]
        self.rows[source] += frame.height
        self.bad[source] += int(frame["quarantined"].sum())
        counts = frame["planted"].drop_nulls().value_counts()
        for code, count in counts.iter_rows():
            self.planted[code] += count
        self.files += 1

    def close(self) -> None:
        self.writer.close()


class Landing:
    """Writes one landing file at a time: plant, shuffle, style, write, record the truth."""

    def __init__(self, root: Path, truth: TruthWriter, cfg: SampleConfig, seed: int,
                 years: tuple[int, ...]) -> None:
        self.root, self.truth, self.seed, self.years = root, truth, seed, years
        self.planter = Planter(cfg)

    def write(self, frame: pl.DataFrame, source: Source, spec: OrgSpec | None, year: int,
              fmt: str) -> pl.DataFrame:
        """Writes the file; returns its truth rows (with `_key`) for callers that need them."""
        org_id = spec.org_id if spec else None
        folder = f"{source.folder}/{org_id}" if org_id else source.folder
        rel = f"{folder}/{source.stem}_{year}.{fmt}"
        rng = rng_for(self.seed, f"file:{rel}")
        prefix = spec.id_prefix if spec else ""
        unparseable = spec.allows_unparseable(fmt) if spec else True
        frame = self.planter.plant(frame, FileContext(source.name, year, prefix, unparseable), rng)
        frame = shuffle(frame, rng)
        data = frame.drop([c for c in frame.columns if c.startswith("_")])
        dtypes = dtypes_for(data, source)
        data, dtypes = style(data, dtypes, spec, fmt, rng, self.years.index(year))
        write_frame(data, dtypes, self.root / rel, fmt, bom=bool(spec and spec.bom),
                    text=bool(spec and spec.parquet_text))
        truth = frame.select(
            pl.lit(source.name).alias("source"),
            pl.lit(org_id, pl.String).alias("org_id"),
            pl.lit(year, pl.Int32).alias("year"),
            pl.lit(rel).alias("file"),
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("line"),
            pl.col(source.id_column).alias("record_id"),
            person_id(pl.col("_pidx")).alias("true_person_id"),
            pl.col("_planted").alias("planted"),
            quarantined(source.name, pl.col("_planted")).alias("quarantined"),
            pl.col("_noise").alias("noise"),
            pl.col("_key"),
        )
        self.truth.add(truth)
        return truth


def _reset(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _write_reference(world: World, landing: Path) -> None:
    ref = landing / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    world.counties.write_csv(ref / "counties.csv")
    world.population.write_csv(ref / "population.csv")
    world.partnerships.write_csv(ref / "partnerships.csv")


def _ids(registrations: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return pl.concat([
        reg.select(pl.lit(org).alias("org_id"), "local_id",
                   person_id(pl.col("pidx")).alias("true_person_id"))
        for org, reg in registrations.items()
    ]).sort("org_id", "local_id")


def _effect(world: World, cfg: SampleConfig) -> dict:
    return {
        "indicator_id": "cross_sector_reach",
        "definition": "share of persons with a SNAP, TANF or MEDICAID spell active in a year "
                      "who also have a nonprofit enrollment active that year",
        "effect": cfg.reach_effect,
        "effect_kind": "absolute increase from the first partnership start_year on, "
                       "treated counties only; constant over event time",
        "baseline": cfg.reach_base,
        "common_trend_per_year": cfg.reach_trend,
        "county_level_sd": cfg.reach_county_sd,
        "first_year": world.years[0],
        "years": list(world.years),
        "treated_counties": dict(sorted(world.treated.items())),
        "control_counties": sorted(set(world.county_fips) - set(world.treated)),
        "note": "met exactly (up to rounding) by the true persons of every county and year: "
                "see reach.parquet; linkage error and quarantined rows move the measured "
                "values slightly",
    }


def generate(
    out: Path, scale: int = 5000, seed: int = 7, first_year: int = 2018, n_years: int = 6,
    *, config: SampleConfig | None = None,
) -> dict:
    """Write out/landing (contract section 1) and out/truth; return a small summary.

    Same arguments give the same files, byte for byte; `scale` is the number of
    true persons (the served population).
    """
    if scale < MIN_SCALE:
        raise ValueError(f"scale must be at least {MIN_SCALE}, got {scale}")
    if n_years < MIN_YEARS:
        raise ValueError(f"n_years must be at least {MIN_YEARS}, got {n_years}")
    began = time.perf_counter()
    cfg = config or SampleConfig()
    out = Path(out)
    landing, truth_dir = _reset(out / "landing"), _reset(out / "truth")
    years = tuple(range(first_year, first_year + n_years))
    parts = ("counties", "persons", "population", "partnerships")
    world = make_world({p: rng_for(seed, p) for p in parts}, scale, years, cfg)
    _write_reference(world, landing)

    truth = TruthWriter(truth_dir / "records.parquet")
    zone = Landing(landing, truth, cfg, seed, years)
    persons = world.persons
    registrations: dict[str, pl.DataFrame] = {}

    spells = make_spells(rng_for(seed, "spells"), world, cfg)
    for spec in (DHS, DCF):
        rows = spells.filter(pl.col("org_id") == spec.org_id)
        reg = register_org(rng_for(seed, f"register:{spec.org_id}"), persons,
                           rows["pidx"].to_numpy(), spec)
        registrations[spec.org_id] = reg
        for i, year in enumerate(years):
            rng = rng_for(seed, f"rows:{spec.org_id}:{year}")
            frame = files.spells_file(rows.filter(pl.col("year") == year), reg, persons, spec,
                                      year, rng)
            zone.write(files.add_extras(frame, spec, rng), SPELLS, spec, year, spec.format_for(i))

    enrollments = make_enrollments(rng_for(seed, "enrollments"), world, spells, cfg)
    excluded: list[pl.Series] = []
    for spec in PARTNERS:
        rows = enrollments.filter(pl.col("partner") == spec.org_id)
        reg = register_org(rng_for(seed, f"register:{spec.org_id}"), persons,
                           rows["pidx"].to_numpy(), spec)
        registrations[spec.org_id] = reg
        if spec.mapping:
            write_mapping(spec, landing)
        for i, year in enumerate(years):
            rng = rng_for(seed, f"rows:{spec.org_id}:{year}")
            frame = files.services_file(rows.filter(pl.col("year") == year), reg, persons,
                                        spec, year)
            written = zone.write(files.add_extras(frame, spec, rng), SERVICES, spec, year,
                                 spec.format_for(i))
            excluded.append(written.filter(pl.col("quarantined"))["_key"])

    # surveys follow only enrollments that load cleanly: a client the partner enrolled
    good = enrollments.filter(~pl.col("key").is_in(pl.concat(excluded).implode()))
    surveys = make_client_surveys(rng_for(seed, "client_surveys"), good, world, cfg)
    for spec in PARTNERS:
        rows = surveys.filter(pl.col("partner") == spec.org_id)
        for i, year in enumerate(years):
            frame = files.client_surveys_file(rows.filter(pl.col("year") == year),
                                              registrations[spec.org_id], spec, year)
            zone.write(frame, CLIENT_SURVEYS, spec, year, spec.format_for(i))

    dwd_reg = register_org(rng_for(seed, f"register:{DWD.org_id}"), persons,
                           np.arange(persons.height), DWD)
    for i, (year, wages) in enumerate(iter_wages(rng_for(seed, "wages"), world, enrollments,
                                                  cfg)):
        zone.write(files.wages_file(wages, dwd_reg, year), WAGES, DWD, year, DWD.format_for(i))

    for year, frame in make_partnership_surveys(rng_for(seed, "partnership_surveys"), world,
                                                cfg).items():
        fmt = PARTNERSHIP_SURVEY_FORMATS[min(years.index(year),
                                             len(PARTNERSHIP_SURVEY_FORMATS) - 1)]
        zone.write(files.partnership_surveys_file(frame), PARTNERSHIP_SURVEYS, None, year, fmt)
    truth.close()

    persons.select(
        "person_id", "first_name", "last_name", "sex", "birth_date", "ssn", "county_fips", "zip",
    ).write_parquet(truth_dir / "persons.parquet")
    _ids(registrations).write_parquet(truth_dir / "ids.parquet")
    true_reach(world, spells, enrollments).write_parquet(truth_dir / "reach.parquet")
    (truth_dir / "effect.json").write_text(json.dumps(_effect(world, cfg), indent=2) + "\n")
    summary = {
        "persons": scale,
        "seed": seed,
        "years": list(years),
        "files": sum(1 for p in landing.rglob("*") if p.is_file()),
        "data_files": truth.files,
        "rows": dict(sorted(truth.rows.items())),
        "bad_rows": dict(sorted(truth.bad.items())),
        "planted": dict(sorted(truth.planted.items())),
        "landing": str(landing),
        "truth": str(truth_dir),
        "seconds": round(time.perf_counter() - began, 2),
    }
    (truth_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
