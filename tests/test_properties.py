"""Properties of staging one landing file, whatever a partner delivers.

Hypothesis writes malformed deliveries: random text in any column, missing and extra
columns in any order, a partner's mapping (sometimes naming a column the file lacks),
duplicate rows, other delimiters and encodings, typed Parquet, xlsx, random and
truncated bytes. Staging the file (as assets/validate.py stage_year does) either
succeeds with nothing lost, rows_read = staged + quarantined + duplicates_collapsed,
or raises LandingError or QuarantineThresholdError whose message names the file and
never quotes a value. Any other exception is a bug.
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import date
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outcomes.ingest import LINE, LandingError, discover
from outcomes.schema import SOURCES, Source
from outcomes.validate import QuarantineThresholdError, StagedFile, check_threshold, stage_file

MARK = "Zq"  # starts every random value: no error message may contain it
PLACES = {
    "spells": "public/ag/spells_2020",
    "wages": "public/ag/wages_2020",
    "services": "nonprofit/np/services_2020",
    "client_surveys": "nonprofit/np/surveys_2020",
    "partnership_surveys": "partnership_surveys/surveys_2020",
}
PARAMS = {
    "today": date.today().isoformat(), "year": 2020, "year_start": "2020-01-01",
    "year_end": "2020-12-31", "county_fips": ["55001", "55003"],
    "known_clients": ["c1", "c2"], "partnership_ids": ["P1"],
}  # fmt: skip
VALID = {
    "sex": "F", "ssn": "219-09-9999", "zip": "53703", "county_fips": "55001",
    "program": "SNAP", "exit_reason": "COMPLETED", "wave": "BASELINE", "client_id": "c1",
    "partnership_id": "P1", "respondent_role": "AGENCY", "year": "2020", "quarter": "2",
    "birth_date": "1980-05-17", "household_size": "3", "wellbeing": "7",
}  # fmt: skip
BY_TYPE = {pl.Date: "2020-03-01", pl.Int64: "4", pl.Float64: "10.5", pl.Boolean: "yes"}
ODD = ["", " ", "nan", "inf", "-1", "1e400", "2020-02-30", "03/01/2020", "2020-03-01T00:00",
       "123-45-6789", "000000000", "x" * 300, "Y", "1.0", " 55001 "]  # fmt: skip
CUT_STEPS = 10_000
ENCODINGS = ["utf-8"] * 4 + ["utf-8-sig", "latin-1", "cp1252", "utf-16"]


def valid(source: Source, column: str) -> str:
    if column == "program" and source.name == "services":
        return "HOUSING"
    return VALID.get(column) or BY_TYPE.get(type(source.dtypes[column]), f"v-{column}")


@st.composite
def cell(draw, source: Source, column: str, noise: int) -> str | None:
    """A valid value, except one time in `noise`: missing, random text or an odd value."""
    if draw(st.integers(1, noise)) > 1:
        return valid(source, column)
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return None
    if kind == 1:
        return MARK + draw(st.text(max_size=10))
    return draw(st.sampled_from(ODD))


@st.composite
def table(draw) -> tuple[Source, pl.DataFrame, dict[str, str]]:
    """Rows as text under the partner's column names, and its mapping (theirs by ours)."""
    source = SOURCES[draw(st.sampled_from(list(SOURCES)))]
    noise = draw(st.sampled_from([1, 3, 30, 300]))  # from all bad to nearly all good
    keep = source.column_names
    if draw(st.integers(0, 3)) == 0:  # some columns go missing
        keep = [c for c in keep if draw(st.integers(0, 5)) > 0]
    extra = draw(st.lists(st.sampled_from(["notes", "Extra col", "row", "line", "reasons"]),
                          max_size=2, unique=True))  # fmt: skip
    order = draw(st.permutations(keep + extra))
    n = draw(st.integers(0, 12))
    rows = [
        {c: (f"id{i}" if c == source.id_column and draw(st.integers(1, noise)) > 1
             else draw(cell(source, c, noise)))
         if c in source.column_names else draw(st.text(max_size=5))
         for c in order}
        for i in range(n)
    ]  # fmt: skip
    copies = draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=3)) if n else []
    rows += [dict(rows[i]) for i in copies]  # identical duplicates
    mapping: dict[str, str] = {}
    if source.per_org and keep and draw(st.booleans()):
        mapping = {c: f"Their {c}" for c in draw(st.lists(st.sampled_from(keep), unique=True))}
    names = {c: mapping.get(c, c) for c in order}
    if mapping and draw(st.integers(0, 3)) == 0:  # the export changed, the mapping did not
        mapping[next(iter(mapping))] = "Renamed since"
    if draw(st.integers(0, 5)) == 0:  # stray spaces around header names
        names = {c: f" {v} " for c, v in names.items()}
    df = pl.DataFrame(
        [[r[c] for c in order] for r in rows],
        schema={names[c]: pl.String for c in order},
        orient="row",
    )
    return source, df, mapping


def to_csv(draw, df: pl.DataFrame) -> bytes:
    delimiter = draw(st.sampled_from([",", ",", ",", ",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    if draw(st.booleans()):
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
        w.writerow(df.columns)
        w.writerows([["" if v is None else v for v in r] for r in df.rows()])
        text = buf.getvalue()
    else:  # written by hand: no quoting at all
        lines = [delimiter.join(df.columns)]
        lines += [delimiter.join("" if v is None else v for v in r) for r in df.rows()]
        text = newline.join(lines) + newline
    return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


def to_parquet(draw, df: pl.DataFrame, source: Source, mapping: dict[str, str]) -> bytes:
    """Columns whose every value parses are sometimes written typed, as exports do."""
    ours = {v: k for k, v in mapping.items()}
    for name in df.columns:
        dtype = source.dtypes.get(ours.get(name.strip(), name.strip()))
        if dtype in (pl.Date, pl.Int64, pl.Float64) and draw(st.booleans()):
            col = df[name]
            typed = (
                col.str.to_date(strict=False) if dtype == pl.Date else col.cast(dtype, strict=False)
            )
            if typed.null_count() == col.null_count():
                df = df.with_columns(typed.alias(name))
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def to_xlsx(df: pl.DataFrame) -> bytes:
    printable = df.with_columns(pl.all().str.replace_all(r"[\x00-\x1f]", "?"))
    buf = io.BytesIO()
    printable.write_excel(buf)
    return buf.getvalue()


@st.composite
def deliveries(draw) -> tuple[str, bytes, dict[str, str], pl.DataFrame | None]:
    """(path in the landing zone, file bytes, mapping, the frame written if Parquet)."""
    source, df, mapping = draw(table())
    ext = draw(st.sampled_from(["csv", "csv", "csv", "parquet", "xlsx", "bytes"]))
    rel = PLACES[source.name]
    written = None
    if ext == "csv":
        content = to_csv(draw, df)
    elif ext == "parquet":
        content = to_parquet(draw, df, source, mapping)
        written = df
    elif ext == "xlsx":
        content = to_xlsx(df)
    else:  # random bytes under any name, or a good file cut short
        ext = draw(st.sampled_from(["csv", "parquet", "xlsx"]))
        good = {"csv": lambda: df.write_csv().encode(), "parquet": lambda: to_parquet(
            draw, df, source, mapping), "xlsx": lambda: to_xlsx(df)}[ext]()  # fmt: skip
        # where to cut, drawn independently of the bytes: an xlsx embeds the time it was
        # written, so its length varies and a draw bounded by it would make Hypothesis flaky
        cut = len(good) * draw(st.integers(0, CUT_STEPS - 1)) // CUT_STEPS
        content = draw(st.one_of(st.binary(max_size=300), st.just(good[:cut])))
    return f"{rel}.{ext}", content, mapping, written


def stage(landing: Path, rel: str, max_share: float) -> StagedFile:
    f = next(f for f in discover(landing) if f.relative == rel)
    _, result = stage_file(f, PARAMS)
    check_threshold(result, f.relative, max_share)
    return result


def check(
    rel: str, content: bytes, mapping: dict[str, str], written: pl.DataFrame | None,
    max_share: float,
) -> None:  # fmt: skip
    """Stage one delivery in a fresh landing zone and check the property."""
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp)
        path = landing / rel
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        if mapping:
            cols = ", ".join(f'{k}: "{v}"' for k, v in mapping.items())
            (path.parent / "mapping.yaml").write_text(f"columns: {{{cols}}}\n")
        try:
            r = stage(landing, rel, max_share)
        except (LandingError, QuarantineThresholdError) as e:
            message = str(e)
            assert message.startswith((rel, str(Path(rel).parent / "mapping.yaml"))), message
            assert MARK not in message, message
            return
    assert r.rows_read == r.staged.height + r.rows_quarantined + r.duplicates_collapsed
    staged, quarantined = set(r.staged[LINE]), set(r.quarantine[LINE])
    assert len(staged) == r.staged.height and len(quarantined) == r.rows_quarantined
    assert not staged & quarantined and staged | quarantined <= set(range(1, r.rows_read + 1))
    assert r.quarantine["reasons"].list.len().min() or r.quarantine.is_empty()
    if written is not None:  # Parquet has no parsing ambiguity: every row is read
        assert r.rows_read == written.height


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(delivery=deliveries(), max_share=st.sampled_from([0.05, 0.5, 1.0]))
def test_staging_loses_nothing_or_fails_naming_the_file(delivery, max_share: float):
    check(*delivery, max_share)


OPTIONAL = [c for c in SOURCES["spells"].column_names if c not in SOURCES["spells"].required]


@st.composite
def any_text(draw) -> str:
    """Every required spells column, some optional ones, any order; any text in each cell."""
    header = draw(st.permutations(SOURCES["spells"].required + draw(
        st.lists(st.sampled_from(OPTIONAL), unique=True))))  # fmt: skip
    rows = draw(st.lists(st.lists(st.text(max_size=6), min_size=len(header),
                                  max_size=len(header)), max_size=8))  # fmt: skip
    return "\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n"


@settings(max_examples=60, deadline=None)
@given(text=any_text())
def test_any_text_under_spells_columns_loses_nothing(text: str):
    """Written without quoting: a comma, quote or newline in a value shifts the row."""
    check("public/ag/spells_2020.csv", text.encode(), {}, None, 1.0)
