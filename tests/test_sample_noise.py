"""The generator's identity noise is how administrative records go wrong, at its configured rates.

Each kind is checked twice: in the ground truth (persons.parquet, the `noise`
codes of records.parquet) and in the files as written, read back the way a
loader reads them.
"""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from outcomes.sample import SampleConfig, generate, state_year
from outcomes.sample.config import DCF, DHS, DWD, PARTNERS, STATE_YEAR_ROWS, NoiseProfile
from pipelines.cli import main

SCALE, SEED = 30_000, 5
CFG = SampleConfig()
NOISE = {spec.org_id: spec.noise for spec in (DHS, DCF, DWD, *PARTNERS)}
SEPARATORS = r"[-\s]+"
OTHER_NAME_NOISE = r"name:(typo|swapped|missing|nickname)"
LOCAL_ID = {"spells": "person_id", "services": "client_id", "wages": None}
# rates checked per organisation kind (every nonprofit has the same name noise)
BY_KIND = (("dhs", DHS.noise), ("wages", DWD.noise), ("nonprofit", NOISE["pathways_work"]))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("noise")
    generate(out, scale=SCALE, seed=SEED)
    return out


@pytest.fixture(scope="module")
def persons(sample: Path) -> pl.DataFrame:
    return pl.read_parquet(sample / "truth" / "persons.parquet").with_columns(
        current=pl.coalesce("married_name", "last_name")
    )


@pytest.fixture(scope="module")
def records(sample: Path) -> pl.DataFrame:
    return pl.read_parquet(sample / "truth" / "records.parquet")


def _read(path: Path) -> pl.DataFrame:
    """A landing file as text, in contract column names and codes."""
    if path.suffix == ".csv":
        frame = pl.read_csv(path, infer_schema=False)
    elif path.suffix == ".parquet":
        frame = pl.read_parquet(path).with_columns(pl.all().cast(pl.String))
    else:
        frame = pl.read_excel(path, infer_schema_length=0).with_columns(
            pl.col(pl.String).str.replace(r" 00:00:00$", "")
        )
    mapping_file = path.parent / "mapping.yaml"
    if mapping_file.exists():
        mapping = yaml.safe_load(mapping_file.read_text())
        frame = frame.rename({v: k for k, v in mapping["columns"].items() if v in frame.columns})
    return frame


def _date(c: pl.Expr) -> pl.Expr:
    return pl.coalesce(
        c.str.to_date("%Y-%m-%d", strict=False), c.str.to_date("%m/%d/%Y", strict=False)
    )


@pytest.fixture(scope="module")
def written(sample: Path, records: pl.DataFrame) -> pl.DataFrame:
    """Identity as written in every spells, services and wages file, beside its truth row."""
    parts = []
    for (name, source), truth in records.filter(pl.col("source").is_in(list(LOCAL_ID))).group_by(
        "file", "source"
    ):
        frame = _read(sample / "landing" / str(name))
        local = LOCAL_ID[str(source)]
        frame = frame.select(
            pl.col(local) if local else pl.lit(None, pl.String).alias("local_id"),
            "first_name",
            "last_name",
            "ssn",
            *(["birth_date", "zip"] if local else []),
        ).rename({local: "local_id"} if local else {})
        parts.append(pl.concat([truth.sort("line"), frame], how="horizontal"))
    out = pl.concat(parts, how="diagonal_relaxed")
    return out.select(  # w_: as written, beside the truth columns
        pl.exclude("first_name", "last_name", "birth_date", "ssn", "zip", "noise"),
        pl.col("noise").fill_null(""),
        pl.col("first_name").str.to_uppercase().alias("w_first"),
        pl.col("last_name").str.to_uppercase().alias("w_last"),
        _date(pl.col("birth_date")).alias("w_birth"),
        pl.col("ssn").alias("w_ssn"),
        pl.col("ssn").str.replace_all(r"[-\s]", "").alias("w_ssn_digits"),
        pl.col("zip").alias("w_zip"),
    )


def assert_rate(hits: int, n: int, rate: float, what: str) -> None:
    """Observed share within four standard errors (plus a little) of the configured rate."""
    assert n >= 20, (what, n)
    tolerance = 4 * math.sqrt(rate * (1 - rate) / n) + 0.02
    assert abs(hits / n - rate) <= tolerance, (what, hits, n, rate)


def _kind(org_id: str) -> str:
    return {"dhs": "dhs", "dcf": "dcf", "dwd": "wages"}.get(org_id, "nonprofit")


def _registrations(written: pl.DataFrame, persons: pl.DataFrame) -> pl.DataFrame:
    """One row per identity an organisation held (a renamed person's two surnames: two rows)."""
    rows = written.filter(
        pl.col("local_id").is_not_null() | (pl.col("source") == "wages"),
        pl.col("planted").is_null() | ~pl.col("planted").str.contains("name|person_id|client_id"),
    ).with_columns(married=pl.col("noise").str.contains("name:married"))
    return (
        rows.group_by("org_id", "true_person_id", "local_id", "married")
        .agg(
            pl.col("noise").first(),
            pl.col("year").min().alias("first_year"),
            pl.col("year").max().alias("last_year"),
        )
        .join(persons.rename({"person_id": "true_person_id"}), on="true_person_id")
        .with_columns(
            held=pl.when("married").then("married_name").otherwise("last_name"),
            kind=pl.col("org_id").map_elements(_kind, return_dtype=pl.String),
        )
    )


def test_ground_truth_covers_every_row(
    sample: Path, records: pl.DataFrame, persons: pl.DataFrame, written: pl.DataFrame
) -> None:
    people = records.filter(pl.col("source") != "partnership_surveys")
    assert people["true_person_id"].is_not_null().all()
    assert people["true_person_id"].is_in(persons["person_id"].implode()).all()
    surveys = records.filter(pl.col("source") == "partnership_surveys")
    assert surveys["true_person_id"].is_null().all()
    for (name,), truth in records.group_by("file"):
        assert _read(sample / "landing" / str(name)).height == truth.height, name
    # every local id written (not planted unknown) is the id of the row's true person
    ids = pl.read_parquet(sample / "truth" / "ids.parquet")
    assert ids.select("org_id", "local_id").is_unique().all()
    known = written.filter(
        pl.col("local_id").is_not_null(),
        pl.col("planted").is_null() | ~pl.col("planted").str.contains("id:"),
    )
    joined = known.join(ids, on=["org_id", "local_id"], how="left", suffix="_ids")
    assert joined.height == known.height
    assert (joined["true_person_id"] == joined["true_person_id_ids"]).all()


def test_households_share_address_and_mostly_surname(
    persons: pl.DataFrame, written: pl.DataFrame
) -> None:
    households = persons.group_by("household_id").agg(
        pl.len().alias("size"),
        pl.col("zip", "county_fips").n_unique(),
        pl.col("current").first().alias("head"),
        pl.col("current").slice(1).alias("others"),
    )
    weights = CFG.household_sizes
    mean = sum((i + 1) * w for i, w in enumerate(weights)) / sum(weights)
    assert households["size"].mean() == pytest.approx(mean, abs=0.1)
    assert (households["zip"] == 1).all() and (households["county_fips"] == 1).all()
    others = households.explode("others").drop_nulls("others")
    same = (others["others"] == others["head"]).sum()
    assert_rate(same, others.height, CFG.household_shared_surname, "shared surname")
    # in the written files, members of one household share surname and zip but are
    # different persons: a linker must keep them apart
    members = written.filter(pl.col("noise") == "", pl.col("planted").is_null()).join(
        persons.select(pl.col("person_id").alias("true_person_id"), "household_id"),
        on="true_person_id",
    )
    pairs = members.join(
        members, on=["file", "household_id", "w_last", "w_zip"], suffix="_b"
    ).filter(pl.col("true_person_id") < pl.col("true_person_id_b"))
    assert pairs.height >= 50
    assert (pairs["w_first"] != pairs["w_first_b"]).mean() > 0.9


def test_twins_share_surname_birth_date_address_not_first_name_or_ssn(
    persons: pl.DataFrame, written: pl.DataFrame
) -> None:
    twins = persons.filter(pl.col("twin_of").is_not_null())
    assert_rate(twins.height, persons.height, CFG.twin_share, "twins")
    pairs = twins.join(persons, left_on="twin_of", right_on="person_id", suffix="_b")
    assert (pairs["twin_of_b"] == pairs["person_id"]).all()
    for column in ("household_id", "last_name", "birth_date", "zip", "county_fips"):
        assert (pairs[column] == pairs[f"{column}_b"]).all(), column
    assert (pairs["first_name"] != pairs["first_name_b"]).all()
    assert (pairs["ssn"] != pairs["ssn_b"]).all()
    adjacent = ((pairs["ssn"].cast(pl.Int64) - pairs["ssn_b"].cast(pl.Int64)).abs() == 1).sum()
    assert_rate(adjacent, pairs.height, CFG.twin_adjacent_ssn, "adjacent twin SSNs")
    # as written: clean records of two twins in one source agree on all but first name and SSN
    clean = written.filter(pl.col("noise") == "", pl.col("planted").is_null())
    both = clean.join(
        pairs.select(pl.col("person_id").alias("true_person_id"), pl.col("twin_of")),
        on="true_person_id",
    )
    seen = both.join(
        clean, left_on=["source", "twin_of"], right_on=["source", "true_person_id"], suffix="_b"
    ).filter(pl.col("source") != "wages")
    assert seen.height >= 20
    assert (seen["w_last"] == seen["w_last_b"]).all()
    assert (seen["w_birth"] == seen["w_birth_b"]).all()
    assert (seen["w_zip"] == seen["w_zip_b"]).all()
    assert (seen["w_first"] != seen["w_first_b"]).all()
    assert (seen["w_ssn_digits"] != seen["w_ssn_digits_b"]).all()


def test_married_women_carry_the_new_surname_where_registered_after_the_marriage(
    persons: pl.DataFrame, written: pl.DataFrame
) -> None:
    married = persons.filter(pl.col("married_name").is_not_null())
    assert (married["sex"] == "F").all() and married["twin_of"].is_null().all()
    assert (married["married_name"] != married["last_name"]).all()
    women = persons.filter(
        pl.col("sex") == "F",
        pl.col("twin_of").is_null(),
        ((pl.date(2020, 7, 1) - pl.col("birth_date")).dt.total_days() / 365.25).is_between(18, 60),
    )
    assert_rate(married.height, women.height, CFG.married_name_change, "married women")
    years = married.select(pl.col("person_id").alias("true_person_id"), "marriage_year")
    rows = written.join(years, on="true_person_id", how="left")
    # never before the marriage, never someone who did not marry
    coded = rows.filter(pl.col("noise").str.contains("name:married"))
    assert coded.height > 0 and (coded["year"] >= coded["marriage_year"]).all()
    # as written: the surname held is exactly the married one, or the birth one
    plain = rows.filter(
        pl.col("marriage_year").is_not_null(),
        ~pl.col("noise").str.contains(OTHER_NAME_NOISE + "|compound"),
        pl.col("planted").is_null() | ~pl.col("planted").str.contains("name"),
    ).join(persons.rename({"person_id": "true_person_id"}), on="true_person_id")
    new = plain.filter(pl.col("noise").str.contains("name:married"))
    old = plain.filter(~pl.col("noise").str.contains("name:married"))
    assert new.height > 0 and old.height > 0
    assert (new["w_last"] == new["married_name"].str.to_uppercase()).all()
    assert (old["w_last"] == old["last_name"].str.to_uppercase()).all()
    # rates per organisation kind: kept the old name though registered after; updated later
    regs = _registrations(written, persons).filter(pl.col("married_name").is_not_null())
    by_kind = regs.group_by("org_id", "true_person_id", "local_id").agg(
        pl.col("kind").first(),
        pl.col("first_year").min(),
        pl.col("last_year").max(),
        pl.col("marriage_year").first(),
        pl.col("married").any(),
        pl.col("married").all().alias("only_new"),
    )
    for kind, noise in BY_KIND:
        mine = by_kind.filter(pl.col("kind") == kind)
        after = mine.filter(pl.col("first_year") >= pl.col("marriage_year"))
        if kind != "wages":  # the wage agency registered everyone in the first year
            assert_rate(
                after["married"].sum(),
                after.height,
                1 - noise.maiden_name_kept,
                f"{kind}: registered after the marriage",
            )
            assert after.filter("married")["only_new"].all()
        before = mine.filter(  # registered before, seen again from the marriage year on
            pl.col("first_year") < pl.col("marriage_year"),
            pl.col("last_year") >= pl.col("marriage_year"),
        )
        if kind != "nonprofit":  # a client is seldom enrolled again in a later year
            assert_rate(
                before["married"].sum(),
                before.height,
                noise.married_name_update,
                f"{kind}: updated after the marriage",
            )


def test_compound_surnames_recorded_in_part_or_joined_otherwise(
    persons: pl.DataFrame, written: pl.DataFrame
) -> None:
    compound = persons["current"].str.contains(SEPARATORS)
    assert_rate(compound.sum(), persons.height, CFG.compound_last_name, "compound surnames")
    kinds = persons.filter(compound)["current"]
    assert kinds.str.contains("-").any() and kinds.str.contains(" ").any()
    assert kinds.str.contains(r"^(De|Van|St\.|Del) ").any()
    regs = _registrations(written, persons).filter(pl.col("held").str.contains(SEPARATORS))
    for kind, noise in BY_KIND:
        mine = regs.filter(pl.col("kind") == kind)
        part = mine["noise"].str.contains("name:compound_part")
        assert_rate(part.sum(), mine.height, noise.compound_part, f"{kind}: one part")
        rest = mine.filter(~part)
        assert_rate(
            rest["noise"].str.contains("name:compound_format").sum(),
            rest.height,
            noise.compound_format,
            f"{kind}: other format",
        )
    # as written
    rows = (
        written.filter(
            ~pl.col("noise").str.contains(OTHER_NAME_NOISE),
            pl.col("planted").is_null() | ~pl.col("planted").str.contains("name"),
        )
        .join(persons.rename({"person_id": "true_person_id"}), on="true_person_id")
        .with_columns(
            held=pl.when(pl.col("noise").str.contains("name:married"))
            .then("married_name")
            .otherwise("last_name")
            .str.to_uppercase()
        )
    )
    part = rows.filter(pl.col("noise").str.contains("name:compound_part"))
    assert part.height > 0
    words = part["held"].str.replace_all(SEPARATORS, " ").str.split(" ")
    assert (
        pl.DataFrame({"w": words, "l": part["w_last"]})
        .select(pl.col("w").list.contains(pl.col("l")))
        .to_series()
        .all()
    )
    fmt = rows.filter(pl.col("noise").str.contains("name:compound_format"))
    assert fmt.height > 0
    assert (fmt["w_last"] != fmt["held"]).all()
    squeeze = pl.col("w_last").str.replace_all(SEPARATORS, "")
    assert fmt.select(squeeze == pl.col("held").str.replace_all(SEPARATORS, "")).to_series().all()
    plain = rows.filter(~pl.col("noise").str.contains("compound"))
    assert (plain["w_last"] == plain["held"]).all()


@pytest.mark.parametrize(
    ("org_ids", "noise"),
    [
        (
            ["pathways_work", "kinship_family", "riverbend_bh", "community_action"],
            NOISE["pathways_work"],
        ),
        (["hearth_housing"], NOISE["hearth_housing"]),
        (["dhs"], DHS.noise),
    ],
)
def test_nonprofits_often_lack_ssn_and_birth_date(
    written: pl.DataFrame, persons: pl.DataFrame, org_ids: list[str], noise: NoiseProfile
) -> None:
    regs = _registrations(written, persons).filter(pl.col("org_id").is_in(org_ids))
    regs = regs.unique(["org_id", "true_person_id", "local_id"])
    assert_rate(
        regs["noise"].str.contains("ssn:missing").sum(),
        regs.height,
        noise.ssn_missing,
        "ssn missing",
    )
    assert_rate(
        regs["noise"].str.contains("birth_date:missing").sum(),
        regs.height,
        noise.birth_missing,
        "birth date missing",
    )
    rows = written.filter(pl.col("org_id").is_in(org_ids), pl.col("planted").is_null())
    missing = rows["noise"].str.contains("ssn:missing")
    assert (rows.filter(missing)["w_ssn"].is_null()).all()
    assert (rows.filter(~missing)["w_ssn"].is_not_null()).all()
    assert (
        rows.filter(pl.col("noise").str.contains("birth_date:missing"))["w_birth"].is_null().all()
    )
    if org_ids != ["dhs"]:
        assert 0.4 <= noise.ssn_missing + noise.ssn_partial <= 0.65  # realistic for intake forms


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "summary.json"
    }


def test_one_year_alone(tmp_path: Path) -> None:
    summary = generate(tmp_path / "a", scale=3000, seed=3, years=[2023])
    generate(tmp_path / "b", scale=3000, seed=3, years=[2023])
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    assert summary["years"] == [2023]
    landing = tmp_path / "a" / "landing"
    data = [p for p in landing.rglob("*_*.*") if p.parent.name != "reference"]
    assert data and all(p.stem.endswith("_2023") for p in data)
    assert (landing / "public" / "dhs" / "spells_2023.parquet").exists()  # year 6's format
    population = pl.read_csv(landing / "reference" / "population.csv")
    assert population["year"].unique().to_list() == [2023]
    records = pl.read_parquet(tmp_path / "a" / "truth" / "records.parquet")
    assert set(records["year"]) == {2023}
    people = records.filter(pl.col("source") != "partnership_surveys")
    assert people["true_person_id"].is_not_null().all()
    with pytest.raises(ValueError):
        generate(tmp_path / "c", scale=1000, years=[2030])


def test_state_year_gives_the_benchmark_mix(tmp_path: Path) -> None:
    fraction = 0.005
    summary = generate(tmp_path, seed=7, **state_year(2023, fraction))
    rows = summary["rows"]
    assert summary["years"] == [2023]
    for source, share in (("spells", 0.15), ("wages", 0.1), ("services", 0.3)):
        assert rows[source] == pytest.approx(STATE_YEAR_ROWS[source] * fraction, rel=share), source


def test_cli_generates_one_year(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["generate", "--out", str(tmp_path), "--scale", "1000", "--years", "2023"]
    )
    assert result.exit_code == 0, result.output
    assert "years: [2023]" in result.output
    result = CliRunner().invoke(main, ["generate", "--help"])
    assert "--state-year" in result.output and "--years" in result.output


@pytest.mark.parametrize("scale", [100, 500])
def test_small_scales(tmp_path: Path, scale: int) -> None:
    summary = generate(tmp_path, scale=scale, seed=7)
    records = pl.read_parquet(tmp_path / "truth" / "records.parquet")
    assert records.height == sum(summary["rows"].values())
    for (name,), truth in records.group_by("file"):
        assert _read(tmp_path / "landing" / str(name)).height == truth.height, name


def test_large_files_written_in_slices_hold_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = sys.modules["outcomes.sample.generate"]
    generate(tmp_path / "whole", scale=1000, seed=3)
    monkeypatch.setattr(module, "WRITE_SLICE", 97)
    generate(tmp_path / "sliced", scale=1000, seed=3)
    whole = pl.read_parquet(tmp_path / "whole" / "truth" / "records.parquet")
    sliced = pl.read_parquet(tmp_path / "sliced" / "truth" / "records.parquet")
    assert whole.equals(sliced)
    for name in whole["file"].unique().sort():
        a, b = (_read(tmp_path / run / "landing" / name) for run in ("whole", "sliced"))
        assert a.equals(b), name
    parquet = tmp_path / "sliced" / "landing" / "public" / "dwd" / "wages_2023.parquet"
    assert pq.ParquetFile(parquet).num_row_groups > 1
