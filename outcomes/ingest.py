"""Stage 1, ingest: find landing files and read any format into canonical text columns.

A file is read as text (what the partner wrote), a partner's mapping.yaml is
applied, and only then are values typed (outcomes.validate), so quarantine can
show the raw values and line numbers are the same for CSV, Parquet and xlsx.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from outcomes.schema import REFERENCE, SOURCES, Source

EXTENSIONS = ("csv", "parquet", "xlsx")
LINE = "line"  # 1-based among data rows, the header not counted
_FILE_RE = re.compile(
    r"^(?:(?P<folder>public|nonprofit)/(?P<org>[^/]+)/(?P<stem>spells|wages|services|surveys)"
    r"|(?P<psfolder>partnership_surveys)/(?P<psstem>surveys))_(?P<year>\d{4})\.(?P<ext>csv|parquet|xlsx)$",
    re.IGNORECASE,
)


class LandingError(Exception):
    """A landing file that cannot be used at all; the message names the file."""


@dataclass(frozen=True)
class Mapping:
    """A partner's own export format (contract section 1, column mapping)."""

    columns: dict[str, str] = field(default_factory=dict)  # canonical -> theirs
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    date_format: str | None = None

    @classmethod
    def load(cls, path: Path) -> Mapping:
        if not path.exists():
            return cls()
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise LandingError(f"{path}: not a readable mapping.yaml ({type(e).__name__})") from e
        if not isinstance(doc, dict) or set(doc) - {"columns", "values", "date_format"}:
            raise LandingError(
                f"{path}: a mapping has only the keys columns, values and date_format"
            )
        return cls(
            columns={str(k): str(v) for k, v in (doc.get("columns") or {}).items()},
            values={
                str(c): {str(k): str(v) for k, v in m.items()}
                for c, m in (doc.get("values") or {}).items()
            },
            date_format=doc.get("date_format"),
        )


@dataclass(frozen=True)
class LandingFile:
    source: Source
    org_id: str  # agency or partner id; "" for partnership surveys
    year: int
    path: Path
    relative: str  # path inside the landing zone: what errors and the ledger show

    @property
    def ext(self) -> str:
        return self.path.suffix.lower().lstrip(".")

    def sha256(self) -> str:
        h = hashlib.sha256()
        with self.path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def mapping(self) -> Mapping:
        if not self.source.per_org:
            return Mapping()
        return Mapping.load(self.path.parent / "mapping.yaml")


def _source_of(folder: str, stem: str) -> Source:
    if folder == "partnership_surveys":
        return SOURCES["partnership_surveys"]
    if folder == "nonprofit":
        return SOURCES["client_surveys" if stem == "surveys" else "services"]
    return SOURCES[stem]


def discover(landing_dir: Path) -> list[LandingFile]:
    """Every landing file the contract names, sorted; refuses two files for one slot."""
    if not landing_dir.is_dir():
        raise LandingError(f"landing folder {landing_dir} does not exist")
    found: dict[tuple[str, str, int], LandingFile] = {}
    for p in sorted(landing_dir.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(landing_dir).as_posix()
        m = _FILE_RE.match(rel)
        if not m:
            continue
        folder = (m["folder"] or m["psfolder"]).lower()
        stem = (m["stem"] or m["psstem"]).lower()
        source = _source_of(folder, stem)
        if (folder == "public") != (source.folder == "public"):
            continue  # e.g. public/x/surveys_2020.csv is not a contract file
        lf = LandingFile(source, m["org"] or "", int(m["year"]), p, rel)
        slot = (source.name, lf.org_id, lf.year)
        if slot in found:
            raise LandingError(
                f"{rel} and {found[slot].relative}: two files for the same organisation, "
                "source and year; keep one"
            )
        found[slot] = lf
    return sorted(found.values(), key=lambda f: (f.source.name, f.org_id, f.year))


# ---------------------------------------------------------------- reading as text


def _as_text(df: pl.DataFrame) -> tuple[pl.DataFrame, set[str]]:
    """Every column as text; returns the columns that held real dates."""
    native_dates: set[str] = set()
    exprs = []
    for name, dtype in df.schema.items():
        c = pl.col(name)
        if dtype == pl.Date:
            native_dates.add(name)
            exprs.append(c.dt.strftime("%Y-%m-%d"))
        elif isinstance(dtype, pl.Datetime):
            native_dates.add(name)
            exprs.append(c.dt.date().dt.strftime("%Y-%m-%d"))
        elif dtype.is_float():
            # spreadsheets store integers as floats: 3.0 is "3"
            exprs.append(
                pl.when(c.is_not_nan() & (c == c.round(0)) & (c.abs() < 1e15))
                .then(c.cast(pl.Int64).cast(pl.String))
                .otherwise(c.cast(pl.String))
            )
        elif dtype == pl.Boolean:
            exprs.append(c.cast(pl.String))
        elif dtype == pl.String:
            exprs.append(c)
        else:
            exprs.append(c.cast(pl.String))
    return df.select(e.alias(n) for e, n in zip(exprs, df.columns, strict=True)), native_dates


def _read_any(lf: LandingFile) -> tuple[pl.DataFrame, set[str]]:
    path, ext = lf.path, lf.ext
    try:
        if ext == "csv":
            raw = path.read_bytes()
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise LandingError(
                    f"{lf.relative}: not UTF-8 (byte {e.start}); re-export the file as UTF-8"
                ) from None
            if not raw.strip():
                raise LandingError(f"{lf.relative}: the file is empty (no header row)")
            df = pl.read_csv(raw, infer_schema=False, truncate_ragged_lines=False)
            return df, set()
        if ext == "parquet":
            return _as_text(pl.read_parquet(path))
        # as text: a bad value typed among date cells must not silently become null
        df = pl.read_excel(path, sheet_id=1, engine="calamine", infer_schema_length=0)
        midnight = r"^(\d{4}-\d{2}-\d{2}) 00:00:00$"
        df = df.with_columns(pl.all().str.replace(midnight, "${1}"))
        return df, set(df.columns)  # date cells read as ISO, whatever the mapping says
    except LandingError:
        raise
    except Exception as e:  # polars, fastexcel and pyarrow raise many kinds
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise LandingError(
            f"{lf.relative}: cannot be read as {ext} ({type(e).__name__}: {first})"
        ) from None


def read_header(lf: LandingFile) -> list[str]:
    """The file's own column names, before any mapping (to notice a changed export)."""
    if lf.ext == "csv":
        try:
            first = lf.path.open(encoding="utf-8-sig").readline()
        except UnicodeDecodeError:
            raise LandingError(f"{lf.relative}: not UTF-8") from None
        return [c.strip() for c in pl.read_csv(first.encode(), infer_schema=False).columns]
    return [c.strip() for c in _read_any(lf)[0].columns]


def read_text(lf: LandingFile, mapping: Mapping | None = None) -> tuple[pl.DataFrame, set[str]]:
    """The file's rows as canonical text columns plus `line`; missing optional columns null.

    Returns the frame and the canonical columns that held native dates.
    Raises LandingError (naming the file) when a required column is missing.
    """
    mapping = mapping or lf.mapping()
    df, native = _read_any(lf)
    df = df.rename({c: c.strip() for c in df.columns})
    source = lf.source
    # a mapping serves every file of the organisation: only this source's columns apply
    mapped = {k: v for k, v in mapping.columns.items() if k in source.column_names}
    absent = [v for k, v in mapped.items() if v not in df.columns and k not in df.columns]
    if absent:
        raise LandingError(
            f"{lf.relative}: mapping.yaml names column(s) {absent} that the file does not have"
        )
    theirs = {v: k for k, v in mapped.items() if v in df.columns}
    df = df.rename(theirs)
    missing = [c for c in source.required if c not in df.columns]
    if missing:
        looks = ""
        if len(df.columns) == 1 and ";" in df.columns[0]:
            looks = " (the header looks semicolon-delimited; the contract expects commas)"
        raise LandingError(f"{lf.relative}: missing required column(s) {missing}{looks}")
    df = df.select(
        pl.col(c).str.strip_chars() if c in df.columns else pl.lit(None, pl.String).alias(c)
        for c in source.column_names
    ).with_columns(pl.when(pl.all() == "").then(None).otherwise(pl.all()).name.keep())
    for column, labels in mapping.values.items():
        if column in df.columns:
            df = df.with_columns(pl.col(column).replace(labels))
    df = df.with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.Int64))
    return df, native & set(source.column_names)


def read_reference(landing_dir: Path, name: str) -> pl.DataFrame:
    """A reference CSV, typed; raises LandingError naming the file and column."""
    rel = f"reference/{name}.csv"
    path = landing_dir / rel
    if not path.exists():
        raise LandingError(f"{rel}: missing (every landing zone needs it)")
    schema = REFERENCE[name]
    try:
        df = pl.read_csv(path, infer_schema=False)
    except Exception as e:
        raise LandingError(f"{rel}: cannot be read as csv ({type(e).__name__})") from None
    df = df.rename({c: c.strip() for c in df.columns})
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise LandingError(f"{rel}: missing required column(s) {missing}")
    df = df.select(pl.col(c).str.strip_chars() for c in schema).with_columns(
        pl.when(pl.all() == "").then(None).otherwise(pl.all()).name.keep()
    )
    for c, t in schema.items():
        if t != pl.String:
            bad = df.with_row_index("line", 1).filter(
                pl.col(c).is_not_null() & pl.col(c).cast(t, strict=False).is_null()
            )
            if bad.height:
                raise LandingError(
                    f"{rel}: line {bad['line'][0]}: column {c} is not a {t} "
                    f"({bad.height} such rows)"
                )
    return df.cast(schema)  # type: ignore[arg-type]
