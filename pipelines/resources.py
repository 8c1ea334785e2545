"""The one configuration resource: folders, the linkage secret and disclosure policy."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from outcomes.config import (
    DEFAULT_MAX_QUARANTINE_SHARE,
    DEFAULT_MIN_CELL,
    DEMO_LINKAGE_KEY,
    ENV_LANDING_DIR,
    ENV_WAREHOUSE_DIR,
    Settings,
)
from outcomes.schema import Table
from outcomes.warehouse import Warehouse

# `outcomes demo` writes here, so `dagster dev` with no variables set shows the demo
DEMO_DIR = Path("demo")


class OutcomesConfig(dg.ConfigurableResource):
    """Where the landing zone and warehouse are, and the policy the run applies."""

    landing_dir: str
    warehouse_dir: str
    linkage_key: str = DEMO_LINKAGE_KEY
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE
    quarantine_share_by_source: dict[str, float] = Field(default_factory=dict)
    min_cell: int = DEFAULT_MIN_CELL

    @classmethod
    def from_env(cls) -> OutcomesConfig:
        """The environment's settings; with no folders set, the demo's."""
        return cls.from_settings(
            Settings.from_env(
                os.environ.get(ENV_LANDING_DIR, str(DEMO_DIR / "landing")),
                os.environ.get(ENV_WAREHOUSE_DIR, str(DEMO_DIR / "warehouse")),
            )
        )

    @classmethod
    def from_settings(cls, s: Settings) -> OutcomesConfig:
        return cls(
            landing_dir=str(s.landing_dir),
            warehouse_dir=str(s.warehouse_dir),
            linkage_key=s.linkage_key,
            max_quarantine_share=s.max_quarantine_share,
            quarantine_share_by_source=s.quarantine_share_by_source,
            min_cell=s.min_cell,
        )

    @property
    def settings(self) -> Settings:
        return Settings(
            landing_dir=Path(self.landing_dir),
            warehouse_dir=Path(self.warehouse_dir),
            linkage_key=self.linkage_key,
            max_quarantine_share=self.max_quarantine_share,
            quarantine_share_by_source=dict(self.quarantine_share_by_source),
            min_cell=self.min_cell,
        )

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.warehouse_dir)


_DAGSTER_TYPES = {
    pl.String: "string",
    pl.Int64: "int64",
    pl.Float64: "float64",
    pl.Boolean: "boolean",
    pl.Date: "date",
    pl.Datetime: "timestamp",
    pl.List: "list<string>",
}


def column_schema(table: Table) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, _DAGSTER_TYPES.get(type(dtype), str(dtype)))
            for name, dtype in table.schema.items()
        ]
    )


def written(table: Table, rows: int, path: Path, **extra: object) -> dg.MaterializeResult:
    """What every materialization records: rows, schema and where the output lives."""
    count_key = "dagster/partition_row_count" if table.by_year else "dagster/row_count"
    return dg.MaterializeResult(
        asset_key=table.name,
        metadata={
            count_key: rows,
            "dagster/column_schema": column_schema(table),
            "path": dg.MetadataValue.path(str(path)),
            "zone": table.zone.value,
            **extra,
        },
    )
