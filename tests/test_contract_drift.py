"""docs/CONTRACT.md against the declarations it describes: each fact is declared once.

The landing paths, canonical columns (name, type, whether required, code lists) of
section 1 and the warehouse tables of section 3 are read from the contract's own
text and compared with `outcomes/schema.py`; the suites' value sets are compared
with the same code lists. A change to one of them without the others fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from outcomes import schema
from outcomes.schema import REFERENCE, SOURCES, Source
from outcomes.suites import SUITES_DIR

CONTRACT = Path(__file__).resolve().parents[1] / "docs" / "CONTRACT.md"
TYPES = {"string": pl.String(), "date": pl.Date(), "number": pl.Float64(),
         "integer": pl.Int64(), "boolean": pl.Boolean()}  # fmt: skip
CODE_LIST = re.compile(r"[A-Z0-9_]+(?:, [A-Z0-9_]+)*(?: or [A-Z0-9_]+)?")


def section(n: int) -> str:
    text = CONTRACT.read_text(encoding="utf-8")
    return text.split(f"\n## {n}.", 1)[1].split("\n## ", 1)[0]


def without_parentheses(text: str) -> str:
    return re.sub(r"\s*\([^)]*\)", "", text)


def markdown_table(lines: list[str]) -> list[dict[str, str]]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    header, body = rows[0], rows[2:]
    return [dict(zip(header, r, strict=True)) for r in body]


def landing_listing() -> dict[str, str]:
    """Section 1's file listing: path -> what the contract says it holds."""
    block = section(1).split("```", 2)[1]
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in block.splitlines()
                if line.strip())  # fmt: skip


def canonical_columns() -> dict[str, list[dict[str, str]]]:
    """Each `path` heading of section 1's canonical columns and its table rows."""
    out, lines = {}, section(1).splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"`([^`]+_YYYY)` —", line)
        if m:
            start = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("|"))
            end = next((j for j in range(start, len(lines)) if not lines[j].startswith("|")),
                       len(lines))  # fmt: skip
            out[m[1]] = markdown_table(lines[start:end])
    return out


def heading_of(source: Source) -> str:
    return re.sub(r"<\w+>/", "*/", source.landing_path)


def declared_rows(source: Source) -> list[tuple[str, dict[str, str]]]:
    rows = canonical_columns()[heading_of(source)]
    return [(name, row) for row in rows for name in row["column"].split(", ")]


def code_list(rule: str) -> tuple[str, ...]:
    """F, M, X or U -> (F, M, X, U); () when the rule is not a list of codes."""
    rest = re.sub(r"^(required|optional); ", "", rule)
    if not CODE_LIST.fullmatch(rest):
        return ()
    return tuple(re.split(r", | or ", rest))


def suite_value_sets(name: str) -> dict[str, tuple[str, ...]]:
    suite = json.loads((SUITES_DIR / f"{name}.json").read_text())
    return {
        e["kwargs"]["column"]: tuple(e["kwargs"]["value_set"])
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set"
        and isinstance(e["kwargs"]["value_set"], list)
    }


def test_every_source_and_reference_file_is_where_the_contract_puts_it() -> None:
    listing = landing_listing()
    for source in SOURCES.values():
        assert f"{source.landing_path}.<ext>" in listing, source.name
        assert heading_of(source) in canonical_columns(), source.name
    for name, columns in REFERENCE.items():
        said = without_parentheses(listing[f"reference/{name}.csv"]).split(", ")
        assert said == list(columns), name


def test_the_reference_code_lists_are_the_contracts() -> None:
    population = landing_listing()["reference/population.csv"]
    said = re.search(r"age_group \(([^)]*)\)", population)
    assert said is not None
    assert tuple(said[1].split(" | ")) == schema.AGE_GROUPS
    assert suite_value_sets("population")["age_group"] == schema.AGE_GROUPS


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
def test_canonical_columns_are_declared_as_the_contract_writes_them(source: Source) -> None:
    rows = declared_rows(source)
    assert [name for name, _ in rows] == source.column_names
    columns = {c.name: c for c in source.columns}
    for name, row in rows:
        column = columns[name]
        if "type" in row:
            assert TYPES[row["type"]] == column.dtype, name
        if row["rule"].startswith("required"):
            assert column.required, name
        assert code_list(row["rule"]) == column.codes, name


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
def test_the_suites_check_exactly_the_declared_code_lists(source: Source) -> None:
    assert {c: set(v) for c, v in suite_value_sets(source.name).items()} == {
        c: set(v) for c, v in source.codes.items()
    }


def warehouse_tables() -> list[dict[str, str]]:
    lines = [line for line in section(3).splitlines() if line.startswith("|")]
    return markdown_table(lines)


def named_columns(grain: str) -> list[str]:
    """The column names a grain sentence lists: `one row per file: a, b, c` -> a, b, c."""
    text = without_parentheses(grain).split(";")[0].split(":")[-1]
    words = (w.strip() for w in re.split(r",| plus | and ", text))
    return [w for w in words if re.fullmatch(r"[a-z][a-z0-9_]*", w)]


def test_warehouse_tables_are_declared_in_their_zone_with_the_contracts_columns() -> None:
    tables = {t.name: t for t in vars(schema).values() if isinstance(t, schema.Table)}
    rows = warehouse_tables()
    assert len(rows) >= 10
    for row in rows:
        table = tables[row["table"]]
        assert table.zone.value == row["zone"], table.name
        listed = named_columns(row["grain and key columns"])
        assert listed, table.name
        assert set(listed) <= set(table.schema), (table.name, set(listed) - set(table.schema))
