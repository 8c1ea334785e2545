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
    ENV_LINKAGE_KEY,
    ENV_WAREHOUSE_DIR,
    Settings,
    validate_linkage_key,
)
from outcomes.schema import Table
from outcomes.warehouse import Warehouse

# `outcomes demo` writes here, so `dagster dev` with no variables set shows the demo
DEMO_DIR = Path("demo")


class OutcomesConfig(dg.ConfigurableResource):
    """Where the landing zone and warehouse are, and the policy the run applies.

    The linkage key is given as `dg.EnvVar("OUTCOMES_LINKAGE_KEY")`: the webserver, the
    run storage and the logs see the variable's name, and Dagster resolves it when a run
    starts (`linkage_key` is then the key itself). The code location (`from_env`) and
    `outcomes run` always do so; the demo's key, which is public, is the one value it
    takes otherwise. The field is also marked secret (the UI masks a value) and the repr
    never shows it.
    """

    landing_dir: str
    warehouse_dir: str
    linkage_key: str = Field(
        default=DEMO_LINKAGE_KEY, repr=False, json_schema_extra={"dagster__is_secret": True}
    )
    demo: bool = False  # the demo's own folders: the only runs allowed the demo key
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE
    quarantine_share_by_source: dict[str, float] = Field(default_factory=dict)
    min_cell: int = DEFAULT_MIN_CELL

    @classmethod
    def from_env(cls) -> OutcomesConfig:
        """The environment's settings; with no warehouse set, the demo's folders and key.

        Raises LinkageKeyError (at load: the code location refuses to start) when the
        key is missing or weak and this is not the demo.
        """
        demo = not os.environ.get(ENV_WAREHOUSE_DIR)
        settings = Settings.from_env(
            os.environ.get(ENV_LANDING_DIR, str(DEMO_DIR / "landing")),
            os.environ.get(ENV_WAREHOUSE_DIR, str(DEMO_DIR / "warehouse")),
            demo=demo,
        )
        if settings.uses_demo_key and not os.environ.get(ENV_LINKAGE_KEY):
            return cls._build(settings, DEMO_LINKAGE_KEY)  # public: no variable to name
        return cls.from_settings(settings)

    @classmethod
    def from_settings(cls, s: Settings) -> OutcomesConfig:
        """The resource for these settings; the key as `dg.EnvVar` when the variable holds it.

        `pipelines.runner` sets the variable for its runs. A key the environment does not
        hold (tests building a resource by hand for an in-memory instance) is passed as a
        value: masked in the UI, but kept in the job snapshot of a persistent instance.
        """
        if os.environ.get(ENV_LINKAGE_KEY) == s.linkage_key:
            return cls._build(s, dg.EnvVar(ENV_LINKAGE_KEY))
        return cls._build(s, s.linkage_key)

    @classmethod
    def _build(cls, s: Settings, key: str) -> OutcomesConfig:
        return cls(
            landing_dir=str(s.landing_dir),
            warehouse_dir=str(s.warehouse_dir),
            linkage_key=key,
            demo=s.demo,
            max_quarantine_share=s.max_quarantine_share,
            quarantine_share_by_source=s.quarantine_share_by_source,
            min_cell=s.min_cell,
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Every run checks the key again (the variable is read now) and says so for the demo."""
        validate_linkage_key(self.key, demo=self.demo)
        if self.key == DEMO_LINKAGE_KEY and context.log is not None:
            context.log.warning(
                f"{ENV_LINKAGE_KEY} is not set: this demo run makes person keys with the "
                "built-in demo key, which anyone with this code has. Not for real data."
            )

    @property
    def key(self) -> str:
        """The linkage key itself, also outside a run (where `linkage_key` may be an EnvVar)."""
        if isinstance(self.linkage_key, dg.EnvVar):
            return self.linkage_key.get_value() or ""
        return self.linkage_key

    @property
    def settings(self) -> Settings:
        return Settings(
            landing_dir=Path(self.landing_dir),
            warehouse_dir=Path(self.warehouse_dir),
            linkage_key=self.key,
            max_quarantine_share=self.max_quarantine_share,
            quarantine_share_by_source=dict(self.quarantine_share_by_source),
            min_cell=self.min_cell,
            demo=self.demo,
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
            dg.TableColumn(
                name,
                _DAGSTER_TYPES.get(type(dtype), str(dtype)),
                description=table.meaning(name) or None,
            )
            for name, dtype in table.schema.items()
        ]
    )


def table_metadata(table: Table, rows: int, path: Path) -> dict[str, object]:
    """What every materialization records: rows, schema and where the output lives."""
    count_key = "dagster/partition_row_count" if table.by_year else "dagster/row_count"
    return {
        count_key: rows,
        "dagster/column_schema": column_schema(table),
        "path": dg.MetadataValue.path(str(path)),
        "zone": table.zone.value,
    }
