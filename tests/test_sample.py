"""The sample generator: deterministic, complete, truthful about every row it writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from outcomes.sample import KINDS, generate
from outcomes.schema import (
    AGE_GROUPS,
    PROGRAMS,
    SEXES,
    SOURCES,
)

SCALE = 2000
MAX_BAD_SHARE = 0.05  # the contract's default limit per file


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample")
    return out, generate(out, scale=SCALE, seed=7)


@pytest.fixture(scope="module")
def records(sample: tuple[Path, dict]) -> pl.DataFrame:
    return pl.read_parquet(sample[0] / "truth" / "records.parquet")


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "summary.json"  # it holds paths and seconds
    }


def _read(path: Path) -> pl.DataFrame:
    """A landing file as text, the way a loader sees it before typing."""
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    if path.suffix == ".parquet":
        return pl.read_parquet(path).with_columns(pl.all().cast(pl.String))
    frame = pl.read_excel(path, infer_schema_length=0)
    return frame.with_columns(pl.col(pl.String).str.replace(r" 00:00:00$", ""))


def _canonical(path: Path) -> tuple[pl.DataFrame, str]:
    """The file in contract names and codes (mapping applied), and its date format."""
    frame = _read(path)
    mapping_file = path.parent / "mapping.yaml"
    if not mapping_file.exists():
        return frame, "%Y-%m-%d"
    mapping = yaml.safe_load(mapping_file.read_text())
    frame = frame.rename({v: k for k, v in mapping["columns"].items() if v in frame.columns})
    frame = frame.with_columns(
        pl.col(c).replace(v) for c, v in mapping["values"].items() if c in frame.columns
    )
    return frame, mapping["date_format"]


def test_same_seed_same_bytes_other_seed_other_content(
    sample: tuple[Path, dict], tmp_path: Path
) -> None:
    generate(tmp_path / "again", scale=SCALE, seed=7)
    generate(tmp_path / "other", scale=SCALE, seed=8)
    first = _hashes(sample[0])
    assert first == _hashes(tmp_path / "again")
    other = _hashes(tmp_path / "other")
    assert first.keys() == other.keys()
    changed = [k for k in first if first[k] != other[k] and k.startswith("landing/public")]
    assert changed, "a different seed must give different data"


def test_summary_and_truth_files(sample: tuple[Path, dict]) -> None:
    out, summary = sample
    truth = out / "truth"
    for name in (
        "persons.parquet",
        "records.parquet",
        "ids.parquet",
        "reach.parquet",
        "effect.json",
        "summary.json",
    ):
        assert (truth / name).is_file(), name
    assert summary["persons"] == SCALE
    assert set(summary["rows"]) == set(SOURCES)
    assert all(summary["bad_rows"][s] > 0 for s in SOURCES)
    assert summary["seconds"] > 0
    assert json.loads((truth / "summary.json").read_text())["rows"] == summary["rows"]
    persons = pl.read_parquet(truth / "persons.parquet")
    assert persons.height == SCALE and persons["person_id"].is_unique().all()
    ssn = persons["ssn"]
    assert ssn.is_unique().all() and ssn.str.contains(r"^\d{9}$").all()
    assert not ssn.str.contains(r"^(000|666|9)").any()


def test_truth_is_beside_the_landing_zone(sample: tuple[Path, dict]) -> None:
    out, summary = sample
    landing, truth = Path(summary["landing"]).resolve(), Path(summary["truth"]).resolve()
    assert landing == (out / "landing").resolve()
    assert landing not in truth.parents and truth not in landing.parents
    assert not any(p.suffix == ".json" for p in landing.rglob("*"))
    assert not list(landing.rglob("records.parquet"))


def test_reference_counties_population_staggered_partnerships(sample: tuple[Path, dict]) -> None:
    ref = sample[0] / "landing" / "reference"
    counties = pl.read_csv(ref / "counties.csv", infer_schema=False)
    assert counties.height >= 20
    assert counties["county_fips"].str.contains(r"^\d{5}$").all()
    assert counties["state_abbr"].n_unique() == 1
    population = pl.read_csv(ref / "population.csv", schema_overrides={"county_fips": pl.String})
    years = sorted(population["year"].unique().to_list())
    assert len(years) >= 6
    assert population.height == counties.height * len(years) * len(AGE_GROUPS)
    assert set(population["age_group"]) == set(AGE_GROUPS)
    total = population.filter(pl.col("year") == years[0])["population"].sum()
    assert 4 * SCALE < total < 16 * SCALE
    partnerships = pl.read_csv(
        ref / "partnerships.csv", schema_overrides={"county_fips": pl.String}
    )
    first = partnerships.group_by("county_fips").agg(pl.col("start_year").min())
    cohorts = first["start_year"].value_counts()
    for offset in (1, 2, 3):
        assert cohorts.filter(pl.col("start_year") == years[offset])["count"].sum() >= 2
    assert partnerships["end_year"].is_not_null().sum() >= 1
    assert counties.height - first.height >= counties.height // 3  # never treated
    effect = json.loads((sample[0] / "truth" / "effect.json").read_text())
    assert effect["treated_counties"] == dict(first.sort("county_fips").iter_rows())
    assert effect["indicator_id"] == "cross_sector_reach" and effect["effect"] > 0


def test_planted_effect_shows_in_the_true_reach(sample: tuple[Path, dict]) -> None:
    truth = sample[0] / "truth"
    effect = json.loads((truth / "effect.json").read_text())
    reach = pl.read_parquet(truth / "reach.parquet").with_columns(
        start=pl.col("county_fips").replace_strict(
            effect["treated_counties"], default=None, return_dtype=pl.Int64
        )
    )
    first = effect["years"][0]
    after = reach.filter(pl.col("year") >= pl.col("start"))
    before = reach.filter(pl.col("start").is_not_null() & (pl.col("year") < pl.col("start")))
    control = reach.filter(pl.col("start").is_null())

    def share(frame: pl.DataFrame) -> float:
        return frame["numerator"].sum() / frame["denominator"].sum()

    def trend(frame: pl.DataFrame) -> float:  # control level in the same years
        years = frame["year"].unique().implode()
        return share(control.filter(pl.col("year").is_in(years)))

    did = (share(after) - trend(after)) - (share(before) - trend(before))
    assert abs(did - effect["effect"]) < effect["effect"] / 2
    assert reach["year"].min() == first


def test_every_source_format_and_mapping_present(
    sample: tuple[Path, dict], records: pl.DataFrame
) -> None:
    landing = sample[0] / "landing"
    files = records.select("source", "org_id", "year", "file").unique()
    assert set(files["source"]) == set(SOURCES)
    assert {"csv", "parquet", "xlsx"} <= {Path(f).suffix[1:] for f in files["file"]}
    partners = files.filter(pl.col("source") == "services")["org_id"].unique()
    assert partners.len() >= 4
    assert files.filter(pl.col("source") == "spells")["year"].n_unique() >= 6
    formats = files.with_columns(fmt=pl.col("file").str.extract(r"\.(\w+)$"))
    changes = formats.group_by("org_id").agg(pl.col("fmt").n_unique()).filter(pl.col("fmt") > 1)
    assert changes.height >= 1, "some organisation changes format between years"
    assert any(p.read_bytes().startswith(b"\xef\xbb\xbf") for p in landing.rglob("*.csv"))
    mappings = list(landing.glob("nonprofit/*/mapping.yaml"))
    assert mappings
    mapping = yaml.safe_load(mappings[0].read_text())
    assert set(mapping) == {"columns", "values", "date_format"}
    services = sorted(mappings[0].parent.glob("services_*"))
    header = _read(services[0]).columns
    assert mapping["columns"]["record_id"] in header and "record_id" not in header
    assert set(header) - set(mapping["columns"].values()), "extra columns are exported"
    programs: set[str] = set()
    for f in files.filter(pl.col("source") == "services")["file"]:
        programs |= set(_canonical(landing / f)[0]["program"].drop_nulls())
    assert set(PROGRAMS["services"]) <= programs
    spells: set[str] = set()
    for f in files.filter(pl.col("source") == "spells")["file"]:
        spells |= set(_canonical(landing / f)[0]["program"].drop_nulls())
    assert set(PROGRAMS["spells"]) <= spells


def test_truth_lines_point_at_the_rows(sample: tuple[Path, dict], records: pl.DataFrame) -> None:
    landing = sample[0] / "landing"
    for (name,), truth in records.group_by("file"):
        frame, _ = _canonical(landing / str(name))
        source = SOURCES[truth["source"][0]]
        assert frame.height == truth.height, name
        written = frame[source.id_column]
        expected = truth.sort("line")["record_id"]
        assert written.eq_missing(expected).all(), name


def test_no_file_plants_more_than_the_limit(records: pl.DataFrame) -> None:
    per_file = records.group_by("file").agg(
        rows=pl.len(),
        bad=pl.col("quarantined").sum(),
        collapsed=(pl.col("planted") == "duplicate_identical").sum(),
    )
    assert (per_file["bad"] <= MAX_BAD_SHARE * per_file["rows"]).all()
    assert per_file["bad"].sum() > 0 and per_file["collapsed"].sum() > 0
    codes = set(records["planted"].drop_nulls())
    assert {"duplicate_identical", "duplicate_record_id", "ssn:placeholder"} <= codes


def test_planted_rows_break_their_rule_and_good_rows_keep_it(
    sample: tuple[Path, dict], records: pl.DataFrame
) -> None:
    """A few contract rules, checked independently of the generator's own code."""
    landing = sample[0] / "landing"
    counties = pl.read_csv(landing / "reference" / "counties.csv", infer_schema=False)[
        "county_fips"
    ].implode()
    for (name,), truth in records.filter(pl.col("source").is_in(["spells", "services"])).group_by(
        "file"
    ):
        frame, date_format = _canonical(landing / str(name))
        year = truth["year"][0]
        start = "start_date" if truth["source"][0] == "spells" else "enroll_date"
        end = "end_date" if start == "start_date" else "exit_date"
        checked = frame.with_columns(truth.sort("line").select("planted", "quarantined")).select(
            "planted",
            "quarantined",
            start_ok=pl.col(start).str.to_date(date_format, strict=False).dt.year() == year,
            order_ok=pl.col(end).is_null()
            | (
                pl.col(end).str.to_date(date_format, strict=False)
                >= pl.col(start).str.to_date(date_format, strict=False)
            ),
            county_ok=pl.col("county_fips").is_in(counties),
            sex_ok=pl.col("sex").is_null() | pl.col("sex").is_in(SEXES),
        )
        good = checked.filter(~pl.col("quarantined"))
        assert (
            good.select(pl.all_horizontal(pl.col("^.*_ok$").fill_null(False))).to_series().all()
        ), name
        for code, column in (
            (f"{start}:wrong_year", "start_ok"),
            (f"{end}:before_start", "order_ok"),
            ("county_fips:unknown", "county_ok"),
            ("sex:invalid", "sex_ok"),
        ):
            broken = checked.filter(pl.col("planted") == code)[column]
            assert not broken.fill_null(False).any(), (name, code)


def _ssn_invalid(ssn: pl.Expr) -> pl.Expr:
    """Contract section 2, written again here: not 9 digits, placeholder or never issued."""
    d = ssn.str.replace_all(r"[-\s]", "")
    repeated = pl.any_horizontal([d == str(i) * 9 for i in range(10)])
    return (
        ~d.str.contains(r"^\d{9}$")
        | (d == "123456789")
        | repeated
        | d.str.slice(0, 3).is_in(["000", "666"])
        | d.str.starts_with("9")
        | (d.str.slice(3, 2) == "00")
        | (d.str.slice(5, 4) == "0000")
    )


def test_invalid_ssns_are_exactly_the_planted_ones(
    sample: tuple[Path, dict], records: pl.DataFrame
) -> None:
    landing = sample[0] / "landing"
    for (name,), truth in records.filter(pl.col("source") != "partnership_surveys").group_by(
        "file"
    ):
        if "ssn" not in SOURCES[truth["source"][0]].column_names:
            continue
        frame, _ = _canonical(landing / str(name))
        checked = frame.select(invalid=_ssn_invalid(pl.col("ssn")).fill_null(False)).with_columns(
            truth.sort("line")["planted"].fill_null("")
        )
        other = pl.col("planted").str.contains(":") & ~pl.col("planted").str.starts_with("ssn:")
        checked = checked.filter(~other & (pl.col("planted") != "duplicate_record_id"))
        is_planted = checked["planted"].str.starts_with("ssn:") & (
            checked["planted"] != "ssn:missing"
        )
        assert (checked["invalid"] == is_planted).all(), name


def test_every_kind_planted_at_the_default_scale(tmp_path: Path) -> None:
    summary = generate(tmp_path, scale=5000, seed=7)
    planted = set(summary["planted"])
    for source, kinds in KINDS.items():
        missing = set(kinds) - planted
        assert not missing, (source, missing)


def test_rejects_too_small_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, scale=10)
    with pytest.raises(ValueError):
        generate(tmp_path, n_years=2)
