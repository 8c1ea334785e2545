"""What calamine does not tell: an xlsx sheet's extent and which cells are numbers.

Both come from the first sheet's XML, read as a stream, before calamine allocates
the sheet's whole used range (a few-KB file may name cell XFD1048576). A number
cell of a code column (an SSN typed as 12345678) must get its leading zero back,
a text cell never: calamine gives both as the same text, so only the XML knows.
"""

from __future__ import annotations

import io
import re
import zipfile
from array import array
from collections.abc import Collection
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, fromstring, iterparse

_CELL = re.compile(r"([A-Z]+)(\d+)$")
_NUMBER_TYPES = (None, "n")  # a cell without t= is a number


@dataclass
class SheetScan:
    rows: int = 0  # up to the farthest cell named, values or not (what calamine allocates)
    columns: int = 0
    header_row: int | None = None  # the first row that holds a value
    first_column: int | None = None  # of the cells that hold a value
    last_value_row: int = 0
    last_value_column: int = 0
    header: dict[int, str] = field(default_factory=dict)  # column -> its header text
    numbers: dict[str, array] = field(default_factory=dict)  # header -> rows of number cells

    def data_rows(self) -> int:
        return self.last_value_row - self.header_row if self.header_row else 0

    def width(self) -> int:
        return self.last_value_column - self.first_column + 1 if self.first_column else 0


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _local(el: Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def _text_of(el: Element) -> str:
    """A string item's text (<t>, or rich-text runs), without phonetic hints."""
    parts = []
    for ch in el:
        if _local(ch) == "t":
            parts.append(ch.text or "")
        elif _local(ch) == "r":
            parts.extend(t.text or "" for t in ch if _local(t) == "t")
    return "".join(parts)


def _parts(z: zipfile.ZipFile) -> tuple[str, str | None]:
    """The first sheet's part (workbook.xml order, via its rels) and the shared strings'."""
    book = fromstring(z.read("xl/workbook.xml"))
    first = next(el for el in book.iter() if _local(el) == "sheet")
    rid = next(v for k, v in first.attrib.items() if k.endswith("}id"))
    rels = list(fromstring(z.read("xl/_rels/workbook.xml.rels")).iter())

    def part(target: str) -> str:
        return target.lstrip("/") if target.startswith("/") else f"xl/{target}"

    sheet = next(part(el.get("Target", "")) for el in rels if el.get("Id") == rid)
    strings = next(
        (part(el.get("Target", "")) for el in rels
         if el.get("Type", "").endswith("/sharedStrings")), None,
    )  # fmt: skip
    return sheet, strings


def _shared_strings(z: zipfile.ZipFile, part: str | None, wanted: set[int]) -> dict[int, str]:
    """The shared strings at `wanted` indices, streamed up to the last one needed."""
    found: dict[int, str] = {}
    if not wanted or part is None or part not in z.namelist():
        return found
    last, i = max(wanted), 0
    with z.open(part) as f:
        for _, el in iterparse(f):
            if _local(el) == "si":
                if i in wanted:
                    found[i] = _text_of(el)
                el.clear()
                i += 1
                if i > last:
                    break
    return found


def scan(raw: bytes, watch: Collection[str] = ()) -> SheetScan:
    """The first sheet's extent, and for the headers in `watch`, the rows of their number
    cells (1-based sheet rows)."""
    out = SheetScan()
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        sheet, strings = _parts(z)
        header_cells: dict[int, tuple[str | None, Element]] = {}
        watched: dict[int, array] | None = None  # known once the header row is complete
        with z.open(sheet) as f:
            for _, el in iterparse(f):
                tag = _local(el)
                if tag == "row":
                    el.clear()  # drops its cells: the stream holds one row at a time
                    continue
                if tag != "c" or not (m := _CELL.match(el.get("r") or "")):
                    continue
                row, col = int(m[2]), _column_number(m[1])
                out.rows, out.columns = max(out.rows, row), max(out.columns, col)
                value = next((ch for ch in el if _local(ch) in ("v", "is")), None)
                if value is None:
                    el.clear()
                    continue
                out.last_value_row = max(out.last_value_row, row)
                out.last_value_column = max(out.last_value_column, col)
                out.first_column = min(out.first_column or col, col)
                if out.header_row is None or row == out.header_row:
                    out.header_row = row
                    header_cells[col] = (el.get("t"), value)
                    continue  # kept whole until the row is complete
                if watched is None:
                    out.header = _header(z, strings, header_cells)
                    watched = {c: array("I") for c, h in out.header.items() if h in watch}
                if col in watched and el.get("t") in _NUMBER_TYPES and _local(value) == "v":
                    watched[col].append(row)
                el.clear()
        if watched is None:
            out.header = _header(z, strings, header_cells)
            watched = {}
    out.numbers = {out.header[c]: rows for c, rows in watched.items()}
    return out


def _header(
    z: zipfile.ZipFile, strings: str | None, cells: dict[int, tuple[str | None, Element]]
) -> dict[int, str]:
    shared = _shared_strings(
        z, strings, {int(v.text or 0) for t, v in cells.values() if t == "s" and v.text}
    )

    def text(t: str | None, v: Element) -> str:
        if t == "s":
            return shared.get(int(v.text or 0), "")
        return _text_of(v) if t == "inlineStr" else (v.text or "")

    return {c: text(t, v).strip() for c, (t, v) in cells.items()}
