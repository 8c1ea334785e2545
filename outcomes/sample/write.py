"""Writers: one canonical string frame out as csv, parquet or xlsx in an organisation's style.

Frames arrive as strings (what a CSV holds). Parquet and xlsx get real types
(dates, numbers, booleans) wherever every value of a column parses; a column
with a planted unparseable value stays text in Parquet, and in xlsx only the
offending cells are text, next to real date cells.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import xlsxwriter
import yaml

from outcomes.sample.config import OrgSpec
from outcomes.schema import Source

ISO = r"^(\d{4})-(\d{2})-(\d{2})$"
EXCEL_FIRST_DAY = dt.date(1900, 1, 1)  # Excel has no date cells before this day
FIXED_CREATED = dt.datetime(2000, 1, 1)  # workbook metadata: byte-identical reruns
SHEET = "data"
TRUE, FALSE = "true", "false"
DATE_FORMATS = {"%m/%d/%Y": "$2/$3/$1", "%d/%m/%Y": "$3/$2/$1"}


def _is(dtype: pl.DataType, kind: type[pl.DataType]) -> bool:
    return dtype == kind


def dtypes_for(frame: pl.DataFrame, source: Source | None) -> dict[str, pl.DataType]:
    """Target types of a frame's columns: the contract's for canonical ones, text otherwise."""
    known = source.dtypes if source else {}
    return {c: known.get(c, pl.String()) for c in frame.columns}


def style(
    frame: pl.DataFrame, dtypes: dict[str, pl.DataType], spec: OrgSpec | None, fmt: str,
    rng: np.random.Generator, year_index: int,
) -> tuple[pl.DataFrame, dict[str, pl.DataType]]:
    """The organisation's habits: boolean words, its own labels, dates and column names, order."""
    bools = [c for c, t in dtypes.items() if _is(t, pl.Boolean)]
    if spec and fmt == "csv" and bools:
        true, false = spec.bool_style
        frame = frame.with_columns(pl.col(bools).replace({TRUE: true, FALSE: false}))
    mapping = spec.mapping if spec else None
    if mapping:
        labels = {col: {code: label for label, code in values.items()}
                  for col, values in mapping["values"].items() if col in frame.columns}
        frame = frame.with_columns(pl.col(c).replace(v) for c, v in labels.items())
        dates = [c for c, t in dtypes.items() if _is(t, pl.Date)]
        frame = frame.with_columns(
            pl.col(dates).str.replace(ISO, DATE_FORMATS[mapping["date_format"]]))
        rename = {c: n for c, n in mapping["columns"].items() if c in frame.columns}
        frame = frame.rename(rename)
        dtypes = {rename.get(c, c): t for c, t in dtypes.items()}
        frame = frame.select(frame.columns[::-1])  # its export lists columns its own way
    elif spec and spec.shuffle_columns and year_index % 2:
        frame = frame.select(np.asarray(frame.columns)[rng.permutation(frame.width)].tolist())
    return frame, dtypes


def _convert(raw: pl.Series, dtype: pl.DataType) -> pl.Series:
    if _is(dtype, pl.Date):
        return raw.str.to_date("%Y-%m-%d", strict=False)
    if _is(dtype, pl.Boolean):
        return raw.str.to_lowercase().replace_strict(
            {TRUE: True, FALSE: False}, default=None, return_dtype=pl.Boolean)
    return raw.cast(dtype, strict=False)


def text_columns(frame: pl.DataFrame, dtypes: dict[str, pl.DataType]) -> frozenset[str]:
    """Typed columns holding a value that does not parse: a typed Parquet file keeps them text."""
    return frozenset(
        name for name in frame.columns
        if not _is(dtypes[name], pl.String)
        and (frame[name].is_not_null() & _convert(frame[name], dtypes[name]).is_null()).any()
    )


def typed(frame: pl.DataFrame, dtypes: dict[str, pl.DataType], *, per_cell: bool,
          text: frozenset[str] = frozenset()) -> tuple[pl.DataFrame, list[tuple[int, int, str]]]:
    """Typed columns; values that do not fit become text (whole column, or per cell for xlsx).

    `text` names columns to keep as text whatever this frame holds (a slice of a file
    whose other slices hold an unparseable value).
    """
    columns, overrides = [], []
    for j, name in enumerate(frame.columns):
        raw, dtype = frame[name], dtypes[name]
        if _is(dtype, pl.String) or name in text:
            columns.append(raw)
            continue
        conv = _convert(raw, dtype)
        failed = raw.is_not_null() & conv.is_null()
        if per_cell and _is(dtype, pl.Date):
            failed |= (conv < EXCEL_FIRST_DAY).fill_null(False)
        if not failed.any():
            columns.append(conv)
        elif per_cell:
            rows = np.flatnonzero(failed.to_numpy())
            overrides += [(int(r), j, raw[int(r)]) for r in rows]
            columns.append(conv.zip_with(~failed, pl.Series([None], dtype=conv.dtype)))
        else:
            columns.append(raw)
    return pl.DataFrame(columns), overrides


def write_frame(frame: pl.DataFrame, dtypes: dict[str, pl.DataType], path: Path, fmt: str,
                *, bom: bool = False, text: bool = False) -> None:
    """One file; `text` writes Parquet with every column as text, as some exporters do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.write_csv(path, include_bom=bom)
    elif fmt == "parquet" and text:
        frame.write_parquet(path)
    elif fmt == "parquet":
        typed(frame, dtypes, per_cell=False)[0].write_parquet(path)
    elif fmt == "xlsx":
        data, overrides = typed(frame, dtypes, per_cell=True)
        workbook = xlsxwriter.Workbook(str(path), {"in_memory": True})  # no temp files
        workbook.set_properties({"created": FIXED_CREATED})
        data.write_excel(workbook, worksheet=SHEET, autofit=False)
        sheet = workbook.get_worksheet_by_name(SHEET)
        for row, col, value in overrides:
            sheet.write_string(row + 1, col, value)  # +1: the header is row 0
        workbook.close()
    else:
        raise ValueError(f"unknown format {fmt}")


class SlicedWriter:
    """One file written slice by slice, so a large file is never held twice.

    csv is appended and typed Parquet gets a row group per slice (its text columns
    decided for the whole file beforehand); xlsx and text Parquet, small files,
    take a single slice.
    """

    def __init__(self, path: Path, fmt: str, *, bom: bool = False, text: bool = False,
                 text_cols: frozenset[str] = frozenset()) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.fmt, self.bom, self.text, self.text_cols = path, fmt, bom, text, text_cols
        self.csv: BinaryIO | None = None
        self.parquet: pq.ParquetWriter | None = None
        self.slices = 0

    @property
    def sliced(self) -> bool:
        return self.fmt == "csv" or (self.fmt == "parquet" and not self.text)

    def write(self, frame: pl.DataFrame, dtypes: dict[str, pl.DataType]) -> None:
        first = self.slices == 0
        self.slices += 1
        if self.fmt == "csv":
            if self.csv is None:
                self.csv = self.path.open("wb")
            frame.write_csv(self.csv, include_header=first, include_bom=self.bom and first)
        elif self.sliced:
            data = typed(frame, dtypes, per_cell=False, text=self.text_cols)[0]
            table = data.to_arrow(compat_level=pl.CompatLevel.oldest())
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema, compression="zstd")
            self.parquet.write_table(table)
        elif first:
            write_frame(frame, dtypes, self.path, self.fmt, bom=self.bom, text=self.text)
        else:
            raise ValueError(f"{self.fmt} files are written in one slice")

    def close(self) -> None:
        if self.csv is not None:
            self.csv.close()
        if self.parquet is not None:
            self.parquet.close()


def write_mapping(spec: OrgSpec, landing: Path) -> None:
    """mapping.yaml in the contract's shape: columns, values, date_format."""
    path = landing / spec.folder / spec.org_id / "mapping.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec.mapping, sort_keys=False, allow_unicode=True))
