"""`outcomes query`: the analytic and published tables as views, and no way to the
restricted zone, whatever the SQL."""

from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from outcomes.query import connect
from pipelines.cli import main

SECRET_SSN = "219099999"


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    wh = tmp_path / "warehouse"
    for path, frame in {
        "analytic/client_outcomes/data.parquet": pl.DataFrame({"person_key": ["k1", "k2"]}),
        "published/outcome_indicators/year=2020/data.parquet": pl.DataFrame({"value": [0.5]}),
        "published/outcome_indicators/year=2021/data.parquet": pl.DataFrame({"value": [0.7]}),
        "restricted/linked_spells/year=2020/data.parquet": pl.DataFrame({"ssn": [SECRET_SSN]}),
    }.items():
        (wh / path).parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(wh / path)
    return wh


def test_the_analytic_and_published_tables_are_views(warehouse: Path):
    con = connect(warehouse)
    assert con.sql("select count(*) from client_outcomes").fetchall() == [(2,)]
    rows = con.sql("select year, value from outcome_indicators order by year").fetchall()
    assert rows == [(2020, 0.5), (2021, 0.7)]
    views = {r[0] for r in con.sql("select view_name from duckdb_views() where not internal")
             .fetchall()}  # fmt: skip
    assert views == {"client_outcomes", "outcome_indicators"}


@pytest.mark.parametrize(
    "sql",
    [
        "select * from read_parquet('{wh}/restricted/linked_spells/*/*.parquet')",
        "select * from read_parquet('{wh}/analytic/../restricted/linked_spells/*/*.parquet')",
        "select * from glob('{wh}/restricted/**')",
        "attach '{wh}/restricted/stolen.db'",
        "copy (select 1) to '{wh}/restricted/out.csv'",
        "set lock_configuration = false",
        "set allowed_directories = ['{wh}/restricted/']",
    ],
)
def test_no_sql_reaches_the_restricted_zone(warehouse: Path, sql: str):
    con = connect(warehouse)
    with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
        con.sql(sql.format(wh=warehouse.resolve().as_posix())).fetchall()
    assert not (warehouse / "restricted" / "out.csv").exists()


def test_outcomes_query_refuses_a_restricted_read_and_shows_no_value(warehouse: Path):
    sql = f"select * from read_parquet('{warehouse}/restricted/linked_spells/*/*.parquet')"
    result = CliRunner().invoke(main, ["query", sql, "--warehouse-dir", str(warehouse)])
    assert result.exit_code == 1
    assert "query failed" in result.output and SECRET_SSN not in result.output
