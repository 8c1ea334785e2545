"""generate(): a sample landing zone and, beside it, the ground truth that made it."""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
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
    STATE_PERSONS,
    OrgSpec,
    SampleConfig,
    state_config,
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
from outcomes.sample.plant import FileContext, Planter, quarantined, shuffle_order
from outcomes.sample.util import person_id, rng_for
from outcomes.sample.world import World, make_world
from outcomes.sample.write import SlicedWriter, dtypes_for, style, text_columns, write_mapping
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
KEPT_REGISTRATION = ("pidx", "slot", "local_id", "from_year", "to_year")  # ids, surveys
WAGE_IDENTITY = ("first_name", "last_name", "ssn", "noise")
WRITE_SLICE = 1_000_000  # rows of a large file styled, written and recorded at a time
STATE_RANGE = 6  # a state-sized year is the last of six: formats and partnerships of year 6
PERSON_COLUMNS = (
    "person_id", "first_name", "last_name", "sex", "birth_date", "ssn", "county_fips", "zip",
    "household_id", "twin_of", "married_name", "marriage_year",
)
TRUTH_SCHEMA = pa.schema([
    ("source", pa.string()), ("org_id", pa.string()), ("year", pa.int32()),
    ("file", pa.string()), ("line", pa.int64()), ("record_id", pa.string()),
    ("true_person_id", pa.string()), ("planted", pa.string()), ("quarantined", pa.bool_()),
    ("noise", pa.string()),
])


class TruthWriter:
    """records.parquet, appended slice by slice so memory stays flat at large scales."""

    def __init__(self, path: Path) -> None:
        self.writer = pq.ParquetWriter(path, TRUTH_SCHEMA, compression="zstd")
        self.rows: Counter[str] = Counter()
        self.bad: Counter[str] = Counter()
        self.planted: Counter[str] = Counter()
        self.files = 0

    def add(self, rows: pl.DataFrame, source: Source, org_id: str | None, year: int,
            rel: str, offset: int = 0) -> pl.Series:
        """The truth of written rows offset+1, offset+2, ... of a file; returns `quarantined`."""
        bad = rows.select(quarantined(source.name, pl.col("_planted"))).to_series()
        truth = rows.select(
            pl.lit(source.name).alias("source"),
            pl.lit(org_id, pl.String).alias("org_id"),
            pl.lit(year, pl.Int32).alias("year"),
            pl.lit(rel).alias("file"),
            pl.int_range(offset + 1, offset + pl.len() + 1, dtype=pl.Int64).alias("line"),
            pl.col(source.id_column).alias("record_id"),
            person_id(pl.col("_pidx")).alias("true_person_id"),
            pl.col("_planted").alias("planted"),
            pl.lit(bad).alias("quarantined"),
            pl.col("_noise").alias("noise"),
        )
        self.writer.write_table(truth.to_arrow().cast(TRUTH_SCHEMA))
        self.rows[source.name] += rows.height
        self.bad[source.name] += int(bad.sum())
        for code, count in rows["_planted"].drop_nulls().value_counts().iter_rows():
            self.planted[code] += count
        return bad

    def close(self) -> None:
        self.writer.close()


class Landing:
    """Writes one landing file at a time: plant, shuffle, style, write, record the truth."""

    def __init__(self, root: Path, truth: TruthWriter, cfg: SampleConfig, seed: int,
                 years: tuple[int, ...]) -> None:
        self.root, self.truth, self.seed, self.years = root, truth, seed, years
        self.planter = Planter(cfg)

    def write(self, parts: pl.DataFrame | Iterable[pl.DataFrame], source: Source,
              spec: OrgSpec | None, year: int, fmt: str) -> pl.DataFrame:
        """Writes one file; returns `_key` and `quarantined` of its rows, in file order.

        A large file comes in parts (the wage file, by quarter), each planted and
        shuffled on its own and appended; every part is written a slice at a time.
        """
        org_id = spec.org_id if spec else None
        folder = f"{source.folder}/{org_id}" if org_id else source.folder
        rel = f"{folder}/{source.stem}_{year}.{fmt}"
        rng = rng_for(self.seed, f"file:{rel}")
        style_rng = rng_for(self.seed, f"style:{rel}")
        ctx = FileContext(source.name, year, spec.id_prefix if spec else "",
                          spec.allows_unparseable(fmt) if spec else True)
        text = bool(spec and spec.parquet_text)
        out: SlicedWriter | None = None
        offset, keys, bad = 0, [], []
        for frame in [parts] if isinstance(parts, pl.DataFrame) else parts:
            frame, keep = self.planter.plant(frame, ctx, rng)
            order, planted = shuffle_order(frame, rng, keep)
            frame = frame.drop("_dup")
            columns = [c for c in frame.columns if not c.startswith("_")]
            dtypes = dtypes_for(frame.select(columns), source)
            if out is None:  # a typed Parquet file's text columns: those of its first part
                out = SlicedWriter(
                    self.root / rel, fmt, bom=bool(spec and spec.bom), text=text,
                    text_cols=text_columns(frame.select(columns), dtypes)
                    if fmt == "parquet" and not text else frozenset())
            # a partner's own format (labels, names) is styled in one go: such files are small
            step = max(WRITE_SLICE if out.sliced and not (spec and spec.mapping)
                       else order.size, 1)
            for start in range(0, max(order.size, 1), step):
                rows = frame[order[start:start + step]].with_columns(planted.slice(start, step))
                # every slice gets the same column order: the same generator state each time
                data, styled = style(rows.select(columns), dtypes, spec, fmt,
                                     copy.deepcopy(style_rng), self.years.index(year))
                out.write(data, styled)
                bad.append(self.truth.add(rows, source, org_id, year, rel, offset + start))
                del rows, data
            offset += order.size
            keys.append(frame["_key"].gather(order))
            del frame
        if out is None:
            raise ValueError(f"{rel}: no rows, not even an empty frame")
        out.close()
        self.truth.files += 1
        return pl.DataFrame({"_key": pl.concat(keys), "quarantined": pl.concat(bad)})


def _wage_parts(wages: pl.DataFrame, registrations: pl.DataFrame,
                year: int) -> Iterator[pl.DataFrame]:
    """A year's wage file quarter by quarter, as employers report: one quarter held at a time."""
    bounds = np.searchsorted(wages["quarter"].to_numpy(), np.arange(1, 6))  # sorted by quarter
    for q in range(4):
        yield files.wages_file(wages.slice(bounds[q], bounds[q + 1] - bounds[q]), registrations,
                               year, first=int(bounds[q]) + 1)


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
    ]).unique(["org_id", "local_id"]).sort("org_id", "local_id")  # a renamed person: two rows


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
        "years": list(world.active),
        "treated_counties": dict(sorted(world.treated.items())),
        "control_counties": sorted(set(world.county_fips) - set(world.treated)),
        "note": "met exactly (up to rounding) by the true persons of every county and year: "
                "see reach.parquet; linkage error and quarantined rows move the measured "
                "values slightly",
    }


def state_year(year: int = 2023, fraction: float = 1.0,
               config: SampleConfig | None = None) -> dict:
    """generate() arguments for one state-sized year: about 2 million spells, 8 million
    wage rows and 200 thousand enrollments (times `fraction`), the last of a six-year range.

        generate(Path("/data/state"), seed=7, **state_year(2023))
    """
    return {
        "scale": max(MIN_SCALE, round(STATE_PERSONS * fraction)),
        "first_year": year - STATE_RANGE + 1,
        "n_years": STATE_RANGE,
        "years": (year,),
        "config": state_config(config),
    }


def _active_years(years: tuple[int, ...], only: Sequence[int] | None) -> tuple[int, ...]:
    if only is None:
        return years
    active = tuple(sorted({int(y) for y in only}))
    if not active or not set(active) <= set(years):
        raise ValueError(f"years must be some of {years[0]}-{years[-1]}, got {list(only)}")
    return active


def generate(
    out: Path, scale: int = 5000, seed: int = 7, first_year: int = 2018, n_years: int = 6,
    *, config: SampleConfig | None = None, years: Sequence[int] | None = None,
) -> dict:
    """Write out/landing (contract section 1) and out/truth; return a small summary.

    Same arguments give the same files, byte for byte; `scale` is the number of
    true persons (the served population). `years` (some of the range) simulates
    and writes only those years: the world (persons, partnerships) is the whole
    range's, events start afresh in the first of them, so memory and time are
    those of the years written. `state_year()` gives the arguments of one
    state-sized year.
    """
    if scale < MIN_SCALE:
        raise ValueError(f"scale must be at least {MIN_SCALE}, got {scale}")
    if n_years < MIN_YEARS:
        raise ValueError(f"n_years must be at least {MIN_YEARS}, got {n_years}")
    began = time.perf_counter()
    cfg = config or SampleConfig()
    out = Path(out)
    all_years = tuple(range(first_year, first_year + n_years))
    active = _active_years(all_years, years)
    landing, truth_dir = _reset(out / "landing"), _reset(out / "truth")
    parts = ("counties", "persons", "population", "partnerships")
    world = make_world({p: rng_for(seed, p) for p in parts}, scale, all_years, cfg, active)
    _write_reference(world, landing)

    truth = TruthWriter(truth_dir / "records.parquet")
    zone = Landing(landing, truth, cfg, seed, all_years)
    persons = world.persons
    registrations: dict[str, pl.DataFrame] = {}

    spells = make_spells(rng_for(seed, "spells"), world, cfg)
    for spec in (DHS, DCF):
        rows = spells.filter(pl.col("org_id") == spec.org_id)
        reg = register_org(rng_for(seed, f"register:{spec.org_id}"), persons,
                           rows["pidx"].to_numpy(), spec, rows["year"].to_numpy())
        for year in active:
            rng = rng_for(seed, f"rows:{spec.org_id}:{year}")
            frame = files.spells_file(rows.filter(pl.col("year") == year), reg, persons, spec,
                                      year, rng)
            zone.write(files.add_extras(frame, spec, rng), SPELLS, spec, year,
                       spec.format_for(all_years.index(year)))
        registrations[spec.org_id] = reg.select(KEPT_REGISTRATION)
    del rows, frame, reg

    enrollments = make_enrollments(rng_for(seed, "enrollments"), world, spells, cfg)
    excluded: list[pl.Series] = []
    for spec in PARTNERS:
        rows = enrollments.filter(pl.col("partner") == spec.org_id)
        reg = register_org(rng_for(seed, f"register:{spec.org_id}"), persons,
                           rows["pidx"].to_numpy(), spec, rows["year"].to_numpy())
        if spec.mapping:
            write_mapping(spec, landing)
        for year in active:
            rng = rng_for(seed, f"rows:{spec.org_id}:{year}")
            frame = files.services_file(rows.filter(pl.col("year") == year), reg, persons,
                                        spec, year)
            written = zone.write(files.add_extras(frame, spec, rng), SERVICES, spec, year,
                                 spec.format_for(all_years.index(year)))
            excluded.append(written.filter(pl.col("quarantined"))["_key"])
        registrations[spec.org_id] = reg.select(KEPT_REGISTRATION)

    # surveys follow only enrollments that load cleanly: a client the partner enrolled
    good = enrollments.filter(~pl.col("key").is_in(pl.concat(excluded).implode()))
    surveys = make_client_surveys(rng_for(seed, "client_surveys"), good, world, cfg)
    for spec in PARTNERS:
        rows = surveys.filter(pl.col("partner") == spec.org_id)
        for year in active:
            frame = files.client_surveys_file(rows.filter(pl.col("year") == year),
                                              registrations[spec.org_id], spec, year)
            zone.write(frame, CLIENT_SURVEYS, spec, year, spec.format_for(all_years.index(year)))
    del surveys, good, rows, frame

    dwd_reg = register_org(rng_for(seed, f"register:{DWD.org_id}"), persons,
                           np.arange(persons.height), DWD, all_years[0])
    dwd_reg = dwd_reg.select(*KEPT_REGISTRATION, *WAGE_IDENTITY)  # all persons: keep it lean
    for year, wages in iter_wages(rng_for(seed, "wages"), world, enrollments, cfg):
        zone.write(_wage_parts(wages, dwd_reg, year), WAGES, DWD, year,
                   DWD.format_for(all_years.index(year)))
        del wages
    registrations[DWD.org_id] = dwd_reg.select(KEPT_REGISTRATION)
    del dwd_reg

    for year, frame in make_partnership_surveys(rng_for(seed, "partnership_surveys"), world,
                                                cfg).items():
        fmt = PARTNERSHIP_SURVEY_FORMATS[min(all_years.index(year),
                                             len(PARTNERSHIP_SURVEY_FORMATS) - 1)]
        zone.write(files.partnership_surveys_file(frame), PARTNERSHIP_SURVEYS, None, year, fmt)
    truth.close()

    persons.select(*PERSON_COLUMNS).write_parquet(truth_dir / "persons.parquet")
    _ids(registrations).write_parquet(truth_dir / "ids.parquet")
    true_reach(world, spells, enrollments).write_parquet(truth_dir / "reach.parquet")
    (truth_dir / "effect.json").write_text(json.dumps(_effect(world, cfg), indent=2) + "\n")
    summary = {
        "persons": scale,
        "seed": seed,
        "years": list(active),
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
