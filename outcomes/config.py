"""Every setting in one place: paths and secrets from the environment, policy defaults.

Dagster resources (assets/resources.py) and the command line both build a
`Settings`; nothing else reads the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# the linkage key's rule lives in outcomes.secret; its names are re-exported here
from outcomes.secret import DEMO_LINKAGE_KEY as DEMO_LINKAGE_KEY
from outcomes.secret import ENV_LINKAGE_KEY as ENV_LINKAGE_KEY
from outcomes.secret import LinkageKeyError as LinkageKeyError
from outcomes.secret import validate_linkage_key

ENV_LANDING_DIR = "OUTCOMES_LANDING_DIR"
ENV_WAREHOUSE_DIR = "OUTCOMES_WAREHOUSE_DIR"
ENV_MAX_QUARANTINE_SHARE = "OUTCOMES_MAX_QUARANTINE_SHARE"
ENV_MIN_CELL = "OUTCOMES_MIN_CELL"
ENV_EXPECTATIONS_DIR = "OUTCOMES_EXPECTATIONS_DIR"  # a deployment's own edited suites
ENV_LOCK_WAIT_SECONDS = "OUTCOMES_LOCK_WAIT_SECONDS"  # a writer waits this long for a partition
ENV_FAULT = "OUTCOMES_FAULT"  # tests: the point where a step kills itself (outcomes.release)
ENV_TRACE_STEPS = "OUTCOMES_TRACE_STEPS"  # tests: signpost each step for an OS-level trace
ENV_ALERT_WEBHOOK = "OUTCOMES_ALERT_WEBHOOK_URL"  # where failed runs are POSTed (pipelines.alerts)
ENV_SETTLE_SECONDS = "OUTCOMES_SETTLE_SECONDS"  # a landing file unchanged this long is complete
ENV_DAGSTER_HOME = "DAGSTER_HOME"  # the Dagster instance's folder (Dagster's own variable)

# Yearly partitions span this range; a landing file outside it is refused by name.
FIRST_PARTITION_YEAR = 2000

DEFAULT_MAX_QUARANTINE_SHARE = 0.05  # contract section 2
DEFAULT_MIN_CELL = 11  # contract section 4: cells below this are suppressed
LOWEST_MIN_CELL = 2  # below it nothing is suppressed: refused
PARQUET_COMPRESSION = "zstd"
DEFAULT_LOCK_WAIT_SECONDS = 60
DEFAULT_SETTLE_SECONDS = 300


@dataclass(frozen=True)
class LandingCaps:
    """What one landing file may hold, checked before anything large is allocated."""

    file_bytes: int = 2 << 30  # OUTCOMES_MAX_FILE_BYTES
    sheet_rows: int = 2_000_000  # OUTCOMES_MAX_SHEET_ROWS (xlsx only: CSV, Parquet by bytes)
    sheet_columns: int = 200  # OUTCOMES_MAX_SHEET_COLUMNS
    parquet_bytes: int = 16 << 30  # OUTCOMES_MAX_PARQUET_BYTES, uncompressed

    @classmethod
    def from_env(cls) -> LandingCaps:
        names = {"file_bytes": "OUTCOMES_MAX_FILE_BYTES", "sheet_rows": "OUTCOMES_MAX_SHEET_ROWS",
                 "sheet_columns": "OUTCOMES_MAX_SHEET_COLUMNS",
                 "parquet_bytes": "OUTCOMES_MAX_PARQUET_BYTES"}  # fmt: skip
        default = cls()
        return cls(**{k: _int_setting(env, getattr(default, k)) for k, env in names.items()})


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it and says what is allowed."""


def quarantine_shares_from_env() -> tuple[float, dict[str, float]]:
    """The share of a file's rows that may be quarantined: OUTCOMES_MAX_QUARANTINE_SHARE,
    and per source OUTCOMES_MAX_QUARANTINE_SHARE_<SOURCE> (e.g. _WAGES=0.10)."""

    def share(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0 <= value <= 1:
            raise SettingsError(f"{name} must be a share from 0 to 1, got {raw!r}")
        return value

    raw = os.environ.get(ENV_MAX_QUARANTINE_SHARE, str(DEFAULT_MAX_QUARANTINE_SHARE))
    default = share(ENV_MAX_QUARANTINE_SHARE, raw)
    by_source = {
        k.removeprefix(ENV_MAX_QUARANTINE_SHARE + "_").lower(): share(k, v)
        for k, v in os.environ.items()
        if k.startswith(ENV_MAX_QUARANTINE_SHARE + "_")
    }
    return default, by_source


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    warehouse_dir: Path
    linkage_key: str = field(default=DEMO_LINKAGE_KEY, repr=False)  # never printed
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE
    min_cell: int = DEFAULT_MIN_CELL
    # per source, e.g. {"wages": 0.10}: OUTCOMES_MAX_QUARANTINE_SHARE_WAGES=0.10
    quarantine_share_by_source: dict[str, float] = field(default_factory=dict)
    # the demo (its own folders): the only runs allowed the built-in demo key
    demo: bool = False
    caps: LandingCaps = field(default_factory=LandingCaps)

    def __post_init__(self) -> None:
        check_min_cell(self.min_cell)

    def max_share(self, source: str) -> float:
        """The share of a file's rows that may be quarantined before the file fails."""
        return self.quarantine_share_by_source.get(source, self.max_quarantine_share)

    @property
    def uses_demo_key(self) -> bool:
        return self.linkage_key == DEMO_LINKAGE_KEY

    def validate_key(self) -> str:
        """The linkage key if this run may use it; else LinkageKeyError saying why."""
        return validate_linkage_key(self.linkage_key, demo=self.demo)

    @classmethod
    def from_env(
        cls,
        landing_dir: Path | str | None = None,
        warehouse_dir: Path | str | None = None,
        demo: bool = False,
    ) -> Settings:
        """Settings from the arguments and the environment.

        Raises LinkageKeyError when OUTCOMES_LINKAGE_KEY is missing, empty, the demo key
        or shorter than 32 bytes, unless `demo` (then a missing key means the demo key).
        """
        landing = landing_dir or os.environ.get(ENV_LANDING_DIR)
        warehouse = warehouse_dir or os.environ.get(ENV_WAREHOUSE_DIR)
        if not landing or not warehouse:
            raise ValueError(
                f"set the landing and warehouse folders ({ENV_LANDING_DIR}, {ENV_WAREHOUSE_DIR} "
                "or --landing-dir, --warehouse-dir)"
            )
        max_share, by_source = quarantine_shares_from_env()
        return cls(
            landing_dir=Path(landing).resolve(),
            warehouse_dir=Path(warehouse).resolve(),
            linkage_key=validate_linkage_key(os.environ.get(ENV_LINKAGE_KEY), demo=demo),
            max_quarantine_share=max_share,
            min_cell=_int_setting(ENV_MIN_CELL, DEFAULT_MIN_CELL),
            quarantine_share_by_source=by_source,
            demo=demo,
            caps=LandingCaps.from_env(),
        )


def check_min_cell(min_cell: int) -> None:
    """The suppression limit must suppress something: 1 would publish every count."""
    if min_cell < LOWEST_MIN_CELL:
        raise SettingsError(
            f"{ENV_MIN_CELL}={min_cell} would publish counts of 1 person: the smallest "
            f"allowed is {LOWEST_MIN_CELL} (the contract's default is {DEFAULT_MIN_CELL})"
        )


def _int_setting(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def min_cell_from_env() -> int:
    """The suppression limit as `outcomes run` reads it (for commands that audit a release)."""
    min_cell = _int_setting(ENV_MIN_CELL, DEFAULT_MIN_CELL)
    check_min_cell(min_cell)
    return min_cell


def lock_wait_seconds() -> int:
    """How long a writer waits for partitions another writer holds before it refuses."""
    wait = _int_setting(ENV_LOCK_WAIT_SECONDS, DEFAULT_LOCK_WAIT_SECONDS)
    if wait < 0:
        raise SettingsError(f"{ENV_LOCK_WAIT_SECONDS} must be 0 or more seconds, got {wait}")
    return wait


def fault_point() -> str | None:
    """The fault-injection point of this process (tests only; see outcomes.release)."""
    return os.environ.get(ENV_FAULT) or None


def trace_steps() -> bool:
    """Whether steps signpost themselves for an OS-level trace (tests/test_lineage.py)."""
    return os.environ.get(ENV_TRACE_STEPS) == "1"


def settle_seconds() -> float:
    """OUTCOMES_SETTLE_SECONDS: how long a landing file must stay unchanged before the
    landing-zone sensor takes it (a `.done` marker beside it says so at once)."""
    raw = os.environ.get(ENV_SETTLE_SECONDS, str(DEFAULT_SETTLE_SECONDS))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise SettingsError(f"{ENV_SETTLE_SECONDS} must be a number of seconds, got {raw!r}")
    return value
