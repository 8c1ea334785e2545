"""DuckDB over the warehouse: analysts query the analytic and published zones in place."""

from __future__ import annotations

from pathlib import Path

import duckdb

from outcomes.schema import Zone

QUERYABLE = (Zone.ANALYTIC, Zone.PUBLISHED)  # never the restricted zone


def connect(warehouse_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per table; Parquet is read where it lies.

    The connection reaches no file outside the analytic and published folders (not the
    restricted zone, not through `read_parquet` or `..`, no ATTACH, no COPY TO), and the
    setting is locked so that SQL cannot lift it.
    """
    con = duckdb.connect()
    bases = [Path(warehouse_dir).resolve() / zone.value for zone in QUERYABLE]
    for base in bases:
        if not base.exists():
            continue
        for table in sorted(
            p for p in base.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
        ):
            partitioned = any(table.glob("year=*/*.parquet"))
            pattern = table / ("*/*.parquet" if partitioned else "*.parquet")
            if not any(table.glob("**/*.parquet")):
                continue
            con.execute(
                f"create view {table.name} as select * from read_parquet("
                f"'{pattern.as_posix()}', hive_partitioning = {str(partitioned).lower()})"
            )
    allowed = ", ".join(f"'{b.as_posix()}/'" for b in bases)
    con.execute(f"SET allowed_directories = [{allowed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con
