"""Stage 1, ingest: find landing files and read any format into canonical text columns.

A file is read as text (what the partner wrote), a partner's mapping.yaml is
applied, and only then are values typed (outcomes.validate), so quarantine can
show the raw values and line numbers are the same for CSV, Parquet and xlsx.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from outcomes import xlsx
from outcomes.config import LandingCaps
from outcomes.schema import REFERENCE, SOURCES, Source

EXTENSIONS = ("csv", "parquet", "xlsx")
LINE = "line"  # 1-based among data rows, the header not counted
# contract section 1's file names: <folder>/<org>/<stem>_YYYY.<ext>, or <folder>/<stem>_YYYY.<ext>
_FILE_RE = re.compile(r"^(?P<path>.+?)_(?P<year>\d{4})\.(?P<ext>csv|parquet|xlsx)$", re.IGNORECASE)
_SOURCE_AT = {(s.folder, s.stem, s.per_org): s for s in SOURCES.values()}


class LandingError(Exception):
    """A landing file that cannot be used at all; the message names the file."""


@dataclass(frozen=True)
class Mapping:
    """A partner's own export format (contract section 1, column mapping)."""

    columns: dict[str, str] = field(default_factory=dict)  # canonical -> theirs
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    date_format: str | None = None

    @classmethod
    def load(cls, path: Path, shown: str | None = None) -> Mapping:
        """`shown` is how errors name the file (its path inside the landing zone)."""
        shown = shown or str(path)
        if not path.exists():
            return cls()
        try:
            doc = _plain_yaml(path.read_text(encoding="utf-8"), shown) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            # PyYAML's message quotes the text around the problem: say where only
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise LandingError(
                f"{shown}: not a readable mapping.yaml ({type(e).__name__}{where})"
            ) from None
        if not isinstance(doc, dict) or set(doc) - {"columns", "values", "date_format"}:
            raise LandingError(
                f"{shown}: a mapping has only the keys columns, values and date_format"
            )
        columns, values = doc.get("columns") or {}, doc.get("values") or {}
        date_format = doc.get("date_format") or None
        # a malformed mapping must fail here, naming its file, not later as a Polars error
        if not (
            isinstance(columns, dict)
            and isinstance(values, dict)
            and all(isinstance(v, str) for v in columns.values())
            and all(isinstance(m, dict) for m in values.values())
            and all(isinstance(v, str) for m in values.values() for v in m.values())
            and (date_format is None or isinstance(date_format, str))
        ):
            raise LandingError(
                f"{shown}: columns must map contract names to yours, values map each "
                'column\'s labels to codes, and date_format be a format such as "%m/%d/%Y"'
            )
        if date_format is not None:
            try:
                pl.Series([""]).str.strptime(pl.Date, date_format, strict=False)
            except Exception:  # chrono refuses some formats Python accepts
                raise LandingError(f"{shown}: date_format is not a valid date format") from None
        return cls(
            columns={str(k): str(v) for k, v in columns.items()},
            values={str(c): {str(k): str(v) for k, v in m.items()} for c, m in values.items()},
            date_format=date_format,
        )


def _plain_yaml(text: str, shown: str) -> object:
    """YAML with every scalar read as written: YAML 1.1 would turn the labels N, yes
    and 001 into false, true and 1. Anchors and aliases are refused (a label is
    written where it is used)."""
    for event in yaml.parse(text, Loader=yaml.BaseLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise LandingError(f"{shown}: anchors and aliases (&, *) are not allowed")
    return yaml.load(text, Loader=yaml.BaseLoader)  # builds str, list and dict only


@dataclass(frozen=True)
class LandingFile:
    source: Source
    org_id: str  # agency or partner id; "" for partnership surveys
    year: int
    path: Path
    relative: str  # path inside the landing zone: what errors and the ledger show
    _digest: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ext(self) -> str:
        return self.path.suffix.lower().lstrip(".")

    def read_bytes(self) -> bytes:
        """The bytes that get parsed, read once; sha256() is theirs from then on, even if
        the file changes during the run."""
        raw = self.path.read_bytes()
        self._digest["sha256"] = hashlib.sha256(raw).hexdigest()
        return raw

    def sha256(self) -> str:
        if "sha256" in self._digest:
            return self._digest["sha256"]
        h = hashlib.sha256()
        with self.path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def mapping(self) -> Mapping:
        if not self.source.per_org:
            return Mapping()
        return Mapping.load(self.path.parent / "mapping.yaml", self.mapping_relative)

    @property
    def mapping_relative(self) -> str:
        return (Path(self.relative).parent / "mapping.yaml").as_posix()


def _source_of(path: str) -> tuple[Source, str] | None:
    """The source and organisation of a file's path before `_YYYY.<ext>`, if it is one of
    the contract's (`Source.folder`, `stem`, `per_org`)."""
    parts = path.split("/")
    if len(parts) not in (2, 3):
        return None
    source = _SOURCE_AT.get((parts[0].lower(), parts[-1].lower(), len(parts) == 3))
    return (source, parts[1] if len(parts) == 3 else "") if source else None


def _regular_files(root: Path) -> list[tuple[Path, str]]:
    """(path, path inside the zone) of every regular file under root, sorted. A symbolic
    link anywhere (it could point outside the zone, or change between reads) and a
    special file (a FIFO, a device) are refused: the zone takes files and folders only."""
    out = []
    for folder, dirs, files in os.walk(root):  # does not follow links
        for name in [*dirs, *files]:
            p = Path(folder, name)
            rel = p.relative_to(root).as_posix()
            mode = os.lstat(p).st_mode
            if stat.S_ISLNK(mode):
                raise LandingError(f"{rel}: a symbolic link; the landing zone takes regular files")
            if name in files and not stat.S_ISREG(mode):
                raise LandingError(f"{rel}: not a regular file (a FIFO, socket or device)")
            if name in files:
                out.append((p, rel))
    return sorted(out, key=lambda x: x[1])


def discover(landing_dir: Path) -> list[LandingFile]:
    """Every landing file the contract names, sorted; refuses two files for one slot."""
    if not landing_dir.is_dir():
        raise LandingError(f"landing folder {landing_dir} does not exist")
    found: dict[tuple[str, str, int], LandingFile] = {}
    for p, rel in _regular_files(landing_dir.resolve()):
        m = _FILE_RE.match(rel)
        found_at = _source_of(m["path"]) if m else None
        if m is None or found_at is None:
            continue  # e.g. public/x/surveys_2020.csv is not a contract file
        source, org = found_at
        lf = LandingFile(source, org, int(m["year"]), p, rel)
        slot = (source.name, lf.org_id, lf.year)
        if slot in found:
            raise LandingError(
                f"{rel} and {found[slot].relative}: two files for the same organisation, "
                "source and year; keep one"
            )
        found[slot] = lf
    return sorted(found.values(), key=lambda f: (f.source.name, f.org_id, f.year))


# ---------------------------------------------------------------- reading as text


def _as_text(df: pl.DataFrame) -> tuple[pl.DataFrame, set[str], set[str], dict[str, str]]:
    """Every column of a Parquet file as text. Returns also the columns that held real
    dates, those that held numbers, and why the others cannot be read (a list, a struct,
    binary that is not UTF-8): said without their values (Polars' errors quote them)."""
    native_dates: set[str] = set()
    unreadable: dict[str, str] = {}
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
        elif dtype == pl.Binary:  # rare: Polars can only cast it whole, and fails naming no row
            bad = next((i for i, v in enumerate(df[name]) if v is not None and not _utf8(v)), None)
            if bad is not None:
                unreadable[name] = f"line {bad + 1}: column {name} is not UTF-8 text"
                exprs.append(pl.lit(None, pl.String))
            else:
                exprs.append(c.cast(pl.String))
        elif dtype == pl.String:
            exprs.append(c)
        elif dtype.is_numeric() or dtype in (pl.Boolean, pl.Null, pl.Categorical, pl.Enum):
            exprs.append(c.cast(pl.String))
        else:
            unreadable[name] = (
                f"column {name} is {dtype.base_type()!r}; the contract takes text, "
                "number, boolean or date columns"
            )
            exprs.append(pl.lit(None, pl.String))
    numbers = {n for n, t in df.schema.items() if t.is_numeric()}
    text = df.select(e.alias(n) for e, n in zip(exprs, df.columns, strict=True))
    return text, native_dates, numbers, unreadable


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class _Read:
    """A file as read: text columns, those that held real dates, and for the columns
    asked for, which rows held a number (a Parquet integer, an xlsx number cell)."""

    df: pl.DataFrame
    native_dates: set[str]
    numbers: dict[str, pl.Series]
    unreadable: dict[str, str] = field(default_factory=dict)  # column -> why, no values


_HEAD = 1 << 16  # enough characters to hold any header row


def _where(line: int) -> str:
    """A physical line index (0 = the header) as errors name it: data lines count from 1."""
    return "the header" if line == 0 else f"line {line}"


def _csv_problem(text: str) -> str:
    """Where and why a CSV does not parse, without quoting its values (Polars would)."""
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        width = len(next(rows))
        for n, row in enumerate(rows, 1):
            if len(row) > width:
                return f"line {n} has {len(row)} fields, the header {width}"
    except csv.Error:
        pass
    # an unclosed quote swallows the rest of the file: name the line that opens it
    for n, physical in enumerate(text.splitlines()):
        if physical.count('"') % 2:
            return f"{_where(n)}: a quote is not closed or stands inside an unquoted value"
    return "malformed (check the delimiter and quoting)"


def _read_any(lf: LandingFile, caps: LandingCaps, watch: Collection[str] = ()) -> _Read:
    """The file as read; a header-only file is a valid delivery of zero rows, an empty one
    (no bytes, or no header) is an error. `watch`: columns whose number cells to report."""
    ext = lf.ext
    size = lf.path.stat().st_size
    if size > caps.file_bytes:
        raise LandingError(
            f"{lf.relative}: {size:,} bytes is over the cap of {caps.file_bytes:,} "
            "(OUTCOMES_MAX_FILE_BYTES)"
        )
    raw = lf.read_bytes()
    if not raw:
        raise LandingError(f"{lf.relative}: the file is empty (0 bytes)")
    try:
        if ext == "csv":
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                where = _where(raw[: e.start].count(b"\n"))
                raise LandingError(
                    f"{lf.relative}: {where}: not UTF-8 "
                    "(Latin-1 or another encoding?); re-export the file as UTF-8"
                ) from None
            # look at the start only: a copy of a large file's text costs its size again
            blank = "\ufeff \t\r\n"  # a BOM and whitespace
            head = text[:_HEAD].lstrip(blank)
            if not head and not text.lstrip(blank):
                raise LandingError(f"{lf.relative}: the file is empty (no header row)")
            del text
            header = head.split("\n", 1)[0]
            if ";" in header and "," not in header:
                raise LandingError(
                    f"{lf.relative}: the header is semicolon-delimited; "
                    "the contract expects commas (re-export as comma-separated CSV)"
                )
            try:
                df = pl.read_csv(raw, infer_schema=False, truncate_ragged_lines=False)
            except Exception as e:
                raise LandingError(
                    f"{lf.relative}: cannot be read as csv: {_csv_problem(raw.decode())} "
                    f"({type(e).__name__})"
                ) from None
            return _Read(df, set(), {})  # CSV has no types: every value is text
        if ext == "parquet":
            import pyarrow.parquet as pq

            meta = pq.read_metadata(io.BytesIO(raw))
            unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            if unpacked > caps.parquet_bytes:
                raise LandingError(
                    f"{lf.relative}: {unpacked:,} bytes uncompressed is over the cap of "
                    f"{caps.parquet_bytes:,} (OUTCOMES_MAX_PARQUET_BYTES)"
                )
            _once_each(lf, meta.schema.to_arrow_schema().names)
            df, native, numeric, unreadable = _as_text(pl.read_parquet(io.BytesIO(raw)))
            every = pl.Series([True]).extend_constant(True, df.height - 1) if df.height else None
            numbers = {c: every for c in numeric if c.strip() in watch and every is not None}
            return _Read(df, native, numbers, unreadable)
        return _read_xlsx(lf, caps, raw, watch)
    except LandingError:
        raise
    except Exception as e:  # polars, fastexcel and pyarrow raise many kinds
        # their messages can quote the values that failed: name the kind of error only
        raise LandingError(
            f"{lf.relative}: cannot be read as {ext} ({type(e).__name__}): {_UNREADABLE[ext]}"
        ) from None


_UNREADABLE = {
    "parquet": "the file is damaged or not Parquet",
    "xlsx": "the workbook is damaged, protected or not xlsx",
}


def _read_xlsx(lf: LandingFile, caps: LandingCaps, raw: bytes, watch: Collection[str]) -> _Read:
    sheet = xlsx.scan(raw, watch)
    _sheet_within(lf, caps, sheet.rows, sheet.columns)  # calamine allocates the whole used range
    # fastexcel renames a repeated header (ssn, ssn_1): read the header row as written
    header = pl.read_excel(io.BytesIO(raw), sheet_id=1, engine="calamine", has_header=False,
                           read_options={"n_rows": 1}, infer_schema_length=0)  # fmt: skip
    _once_each(lf, [str(v) for v in header.row(0) if v is not None] if header.height else [])
    # as text: a bad value typed among date cells must not silently become null; every
    # row and column kept, so that row i is sheet row header_row + 1 + i
    df = pl.read_excel(io.BytesIO(raw), sheet_id=1, engine="calamine", infer_schema_length=0,
                       drop_empty_rows=False, drop_empty_cols=False)  # fmt: skip
    midnight = r"^(\d{4}-\d{2}-\d{2}) 00:00:00$"
    df = df.with_columns(pl.all().str.replace(midnight, "${1}"))
    numbers: dict[str, pl.Series] = {}
    if sheet.header_row and (df.height, df.width) == (sheet.data_rows(), sheet.width()):
        rows = pl.int_range(sheet.header_row + 1, sheet.header_row + 1 + df.height, eager=True)
        numbers = {c: rows.is_in(pl.Series(sheet.numbers[c.strip()], dtype=pl.Int64).implode())
                   for c in df.columns if c.strip() in sheet.numbers}  # fmt: skip
    # else calamine saw another range than the XML: no cell is taken for a number
    if not df.width:
        return _Read(df, set(), {})
    keep = df.select(pl.any_horizontal(pl.all().is_not_null())).to_series()
    df = df.filter(keep)  # data lines count the rows that hold something
    numbers = {h: m.filter(keep) for h, m in numbers.items()}
    return _Read(df, set(df.columns), numbers)  # date cells read as ISO, whatever the mapping


def _sheet_within(lf: LandingFile, caps: LandingCaps, rows: int, columns: int) -> None:
    if rows > caps.sheet_rows or columns > caps.sheet_columns:
        raise LandingError(
            f"{lf.relative}: {rows:,} rows by {columns:,} columns is over the cap of "
            f"{caps.sheet_rows:,} by {caps.sheet_columns:,} "
            "(OUTCOMES_MAX_SHEET_ROWS, OUTCOMES_MAX_SHEET_COLUMNS)"
        )


def _once_each(lf: LandingFile, names: list[str]) -> None:
    """A repeated column header fails: which of the two holds the data?"""
    names = [n.strip() for n in names]
    twice = sorted({c for c in names if c and names.count(c) > 1})
    if twice:
        raise LandingError(f"{lf.relative}: column(s) {twice} appear more than once; keep one")


def read_header(lf: LandingFile) -> list[str]:
    """The file's own column names, before any mapping (to notice a changed export)."""
    if lf.ext == "csv":
        try:
            first = lf.path.open(encoding="utf-8-sig").readline()
            return [c.strip() for c in pl.read_csv(first.encode(), infer_schema=False).columns]
        except UnicodeDecodeError:
            raise LandingError(f"{lf.relative}: not UTF-8") from None
        except Exception as e:  # an empty or malformed header
            raise LandingError(f"{lf.relative}: no readable header ({type(e).__name__})") from None
    return [c.strip() for c in _read_any(lf, LandingCaps()).df.columns]


@dataclass(frozen=True)
class LandingText:
    """One file's rows as canonical text columns plus `line` (missing optional columns
    null), the canonical columns that held real dates, and per code column the number
    cells given back their leading zeros."""

    rows: pl.DataFrame
    native_dates: set[str]
    zero_padded: dict[str, int]


def read_text(
    lf: LandingFile, mapping: Mapping | None = None, caps: LandingCaps | None = None
) -> LandingText:
    """Raises LandingError (naming the file) when the file cannot be used at all."""
    mapping = mapping or lf.mapping()
    source = lf.source
    theirs_of = {c: mapping.columns.get(c, c) for c in source.digits}
    read = _read_any(lf, caps or LandingCaps(), set(theirs_of.values()))
    df = read.df
    # Polars renames a repeated CSV header to <name>_duplicated_<n>
    _once_each(lf, [re.sub(r"_duplicated_\d+$", "", c) for c in df.columns])
    df = df.rename({c: c.strip() for c in df.columns})
    # a mapping serves every file of the organisation: only this source's columns apply,
    # but a name no file of the folder has is a typo that would otherwise go unnoticed
    folder_columns = {c for s in SOURCES.values() if s.folder == source.folder
                      for c in s.column_names}  # fmt: skip
    unknown = sorted((set(mapping.columns) | set(mapping.values)) - folder_columns)
    if unknown:
        raise LandingError(
            f"{lf.relative}: {lf.mapping_relative} maps {unknown}, not contract column(s) "
            f"of {source.folder} files"
        )
    mapped = {k: v for k, v in mapping.columns.items() if k in source.column_names}
    absent = [v for k, v in mapped.items() if v not in df.columns and k not in df.columns]
    if absent:
        raise LandingError(
            f"{lf.relative}: {lf.mapping_relative} names column(s) {absent} "
            "that the file does not have"
        )
    both = sorted(k for k, v in mapped.items() if v != k and v in df.columns and k in df.columns)
    if both:
        raise LandingError(
            f"{lf.relative}: has both column(s) {both} and the column(s) "
            f"{lf.mapping_relative} maps to them; keep one"
        )
    theirs = {v: k for k, v in mapped.items() if v in df.columns}
    df = df.rename(theirs)
    missing = [c for c in source.required if c not in df.columns]
    if missing:
        raise LandingError(f"{lf.relative}: missing required column(s) {missing}")
    unreadable = [why for c, why in read.unreadable.items() if theirs.get(c.strip(), c.strip())
                  in source.column_names]  # fmt: skip
    if unreadable:
        raise LandingError(f"{lf.relative}: " + "; ".join(unreadable))
    df = df.select(
        pl.col(c).str.strip_chars() if c in df.columns else pl.lit(None, pl.String).alias(c)
        for c in source.column_names
    ).with_columns(pl.when(pl.all() == "").then(None).otherwise(pl.all()).name.keep())
    numbers = {k.strip(): v for k, v in read.numbers.items()}
    df, padded = _zero_padded(df, source, {c: numbers[t] for c, t in theirs_of.items()
                                          if t in numbers})  # fmt: skip
    for column, labels in mapping.values.items():
        if column in df.columns:
            df = df.with_columns(pl.col(column).replace(labels))
    df = df.with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.Int64))
    dates = {c.strip() for c in read.native_dates}
    native = {c for c in source.column_names if mapping.columns.get(c, c) in dates}
    return LandingText(df, native, padded)


def _zero_padded(
    df: pl.DataFrame, source: Source, numbers: dict[str, pl.Series]
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Number cells of a code column (ssn, zip, county_fips) padded to its width: a
    spreadsheet drops the zero of 012345678. Text is never padded."""
    if not numbers:
        return df, {}
    marks = pl.DataFrame({f"__number_{c}": m for c, m in numbers.items()})
    df = pl.concat([df, marks], how="horizontal")
    pad = {
        c: pl.col(f"__number_{c}")
        & pl.col(c).str.contains(r"^[0-9]+$")
        & (pl.col(c).str.len_chars() < source.digits[c])
        for c in numbers
    }
    counts = df.select(e.sum().alias(c) for c, e in pad.items()).row(0, named=True)
    df = df.with_columns(
        pl.when(e).then(pl.col(c).str.zfill(source.digits[c])).otherwise(pl.col(c)).alias(c)
        for c, e in pad.items()
    ).drop(marks.columns)
    return df, {c: int(n) for c, n in counts.items()}


def read_reference(landing_dir: Path, name: str) -> pl.DataFrame:
    """A reference CSV, typed; raises LandingError naming the file and column."""
    rel = f"reference/{name}.csv"
    path = landing_dir / rel
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise LandingError(f"{rel}: a symbolic link or special file; give a regular file")
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
