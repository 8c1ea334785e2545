"""The `outcomes` command line (contract section 5). Heavy imports wait for the command."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import polars as pl

from outcomes.config import (
    ENV_DAGSTER_HOME,
    ENV_LANDING_DIR,
    ENV_LINKAGE_KEY,
    ENV_WAREHOUSE_DIR,
    LinkageKeyError,
    Settings,
    SettingsError,
)

DEMO_DIR = Path("demo")
DEMO_INSTANCE = "dagster_home"  # under the demo folder
DEMO_SCALE = 5000
DEFAULT_SEED = 7


def _years(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    m = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", value.strip())
    if not m:
        raise click.BadParameter("give a year or a range, e.g. 2019 or 2018-2023")
    first, last = int(m[1]), int(m[2] or m[1])
    if last < first:
        raise click.BadParameter(f"{value}: the range ends before it starts")
    return first, last


def _refused(e: ValueError) -> None:
    command = click.get_current_context().command_path  # e.g. outcomes run
    click.secho(f"{command} refused: {e}", fg="red", err=True)
    sys.exit(1)


def _settings(landing: Path, warehouse: Path, demo: bool = False) -> Settings:
    """Settings from the environment; a missing or weak linkage key, or a setting out of
    its range, refuses the run."""
    try:
        return Settings.from_env(landing, warehouse, demo=demo)
    except (LinkageKeyError, SettingsError) as e:
        _refused(e)
        raise  # not reached: _refused exits


def _linkage_key() -> str:
    """The linkage key from the environment; a missing or weak one refuses the command."""
    from outcomes.secret import validate_linkage_key

    try:
        return validate_linkage_key(os.environ.get(ENV_LINKAGE_KEY))
    except LinkageKeyError as e:
        _refused(e)
        raise  # not reached: _refused exits


@contextmanager
def _environ(values: dict[str, str | None]) -> Iterator[None]:
    """These environment variables set (None: unset) for a while, then as they were."""
    saved = {n: os.environ.get(n) for n in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run(settings: Settings, years: tuple[int, int] | None) -> None:
    from pipelines.runner import RunFailed, landing_years, run_all

    if settings.uses_demo_key:
        click.secho(
            f"note: this demo makes person keys with the built-in demo key ({ENV_LINKAGE_KEY} "
            "is not set), which anyone with this code has: fine for sample data, never for "
            "real data; `outcomes run` refuses it.",
            fg="yellow",
            err=True,
        )
    try:
        found = landing_years(settings, years)
        click.echo(f"landing   {settings.landing_dir}\nwarehouse {settings.warehouse_dir}")
        summary = run_all(settings, found, echo=click.echo)
    except LinkageKeyError as e:  # not the key the warehouse was built under
        _refused(e)
    except RunFailed as e:
        click.secho(f"outcomes run failed: {e}", fg="red", err=True)
        sys.exit(1)
    click.echo("")
    for line in summary.lines():
        click.echo(line)


@click.group(name="outcomes", context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Longitudinal outcomes for public agencies and nonprofits working as partners."""


def demo_instance(out: Path) -> Path:
    """The demo's own Dagster instance (DAGSTER_HOME), kept beside its warehouse so that
    `dagster dev` shows its runs, materializations and check results."""
    home = (out / DEMO_INSTANCE).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("# the demo's instance: runs, event log and schedules in SQLite here\n"
                          "telemetry:\n  enabled: false\n")  # fmt: skip
    return home


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=DEMO_DIR, show_default=True)
@click.option("--scale", type=click.IntRange(min=100), default=DEMO_SCALE, show_default=True)
@click.option("--years", help="only these years of 2018-2023, for a quicker demo, e.g. 2022-2023")
def demo(out: Path, scale: int, years: str | None) -> None:
    """Make the sample landing zone and materialize everything (into ./demo)."""
    from outcomes.sample import generate

    settings = _settings(out / "landing", out / "warehouse", demo=True)
    span = _years(years)
    click.echo(f"generating {scale:,} sample persons into {out}/landing (truth in {out}/truth)")
    generate(out, scale=scale, seed=DEFAULT_SEED,
             years=range(span[0], span[1] + 1) if span else None)  # fmt: skip
    home = demo_instance(out)
    # the demo has its own folders and instance: the Dagster definitions loaded on the way
    # must not take a real warehouse's (which would need a real key) from the environment
    with _environ({ENV_LANDING_DIR: None, ENV_WAREHOUSE_DIR: None, ENV_DAGSTER_HOME: str(home)}):
        _run(settings, None)
    click.echo(
        f'\nexplore: outcomes query "select * from outcome_indicators limit 10" '
        f"(warehouse {out / 'warehouse'}), outcomes report --out {out / 'report.html'}, "
        f"or the Dagster UI on this demo: DAGSTER_HOME={home} dagster dev"
    )


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="folder for landing/ and, beside it, truth/",
)
@click.option(
    "--scale",
    type=click.IntRange(min=100),
    help=f"number of true persons  [default: {DEMO_SCALE:,}; with --state-year about 4 million]",
)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True)
@click.option(
    "--years",
    help="only these years of 2018-2023, e.g. 2023 or 2022-2023: memory and time of those "
    "years alone (events start afresh in the first)",
)
@click.option(
    "--state-year",
    type=int,
    help="one state-sized year, the last of six: about 2 million spells, 8 million wage rows "
    "and 200 thousand enrollments (--scale scales them)",
)
def generate(
    out: Path, scale: int | None, seed: int, years: str | None, state_year: int | None
) -> None:
    """Write a sample landing zone only, with its ground truth beside it."""
    from outcomes.sample import generate as make
    from outcomes.sample import state_year as state_args
    from outcomes.sample.config import STATE_PERSONS

    if state_year is not None:
        if years:
            raise click.UsageError("give --years or --state-year, not both")
        fraction = (scale or STATE_PERSONS) / STATE_PERSONS
        summary = make(out, seed=seed, **state_args(state_year, fraction))
    else:
        span = _years(years)
        only = range(span[0], span[1] + 1) if span else None
        try:
            summary = make(out, scale=scale or DEMO_SCALE, seed=seed, years=only)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--years") from e
    click.echo(f"landing zone {out / 'landing'}, ground truth {out / 'truth'}")
    for k, v in summary.items():
        click.echo(f"  {k}: {v}")


@main.command()
@click.option(
    "--landing-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar=ENV_LANDING_DIR,
    required=True,
)
@click.option(
    "--warehouse-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar=ENV_WAREHOUSE_DIR,
    required=True,
)
@click.option("--years", help="only these years, e.g. 2019 or 2018-2023")
def run(landing_dir: Path, warehouse_dir: Path, years: str | None) -> None:
    """Materialize every asset for every year found, through Dagster."""
    _run(_settings(landing_dir, warehouse_dir), _years(years))


@main.command()
@click.option(
    "--landing-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    required=True,
    help="the delivery, laid out as a landing zone (public/<agency_id>/..., nonprofit/...)",
)
@click.argument("files", nargs=-1)
@click.option(
    "--reference-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="a folder whose reference/ has counties.csv, population.csv and partnerships.csv "
    "[default: the delivery's own]",
)
@click.option("--max-rows", type=click.IntRange(min=0), default=50, show_default=True,
              help="quarantined rows listed per file")  # fmt: skip
def validate(
    landing_dir: Path, files: tuple[str, ...], reference_dir: Path | None, max_rows: int
) -> None:
    """Check a delivery before sending it: the mapping and the suites, per file.

    Lists the rows a run would quarantine (line and rule, never a value) and whether
    each file would fail its partition. Writes nothing. FILES (paths inside the
    delivery) limit the check to those. Exits 1 when any file would fail.
    """
    from assets.partitions import partition_years
    from outcomes.config import LandingCaps, quarantine_shares_from_env
    from outcomes.delivery import check_delivery, report_lines
    from outcomes.ingest import LandingError

    try:
        default, by_source = quarantine_shares_from_env()
        caps = LandingCaps.from_env()
    except SettingsError as e:
        _refused(e)
        raise
    try:
        reports = check_delivery(
            landing_dir, max_share=lambda source: by_source.get(source, default),
            years=partition_years(), reference_dir=reference_dir, files=files, caps=caps,
        )  # fmt: skip
    except LandingError as e:
        click.secho(f"outcomes validate: cannot check this delivery: {e}", fg="red", err=True)
        sys.exit(1)
    click.echo(f"delivery {landing_dir} (lines count data rows from 1, the header not counted)")
    for line in report_lines(reports, max_rows):
        click.echo(line)
    if any(r.fails for r in reports):
        sys.exit(1)


@main.group()
def linkage() -> None:
    """The linkage model a warehouse keeps."""


@linkage.command("train")
@click.option("--warehouse-dir", type=click.Path(path_type=Path), required=True)
@click.option("--reason", default="retrained on purpose", show_default=True)
@click.option(
    "--relink",
    is_flag=True,
    help="Also link every year again with the new model, recording each key change.",
)
def linkage_train(warehouse_dir: Path, reason: str, relink: bool) -> None:
    """Train a new model version on every identity variant the registry knows.

    Later runs score with the new version; the keys already given stay as they are,
    unless --relink links the whole history again (needs OUTCOMES_LINKAGE_KEY): each
    person keeps the old key most of its records had, and every record that changes
    key is a row of person_key_merges or person_key_splits.
    """
    from outcomes import linkage_model as lm
    from outcomes.link import IDENTITY_REGISTRY
    from outcomes.warehouse import Warehouse

    wh = Warehouse(warehouse_dir)
    variants = wh.read(IDENTITY_REGISTRY)
    if variants.is_empty():
        click.secho("no identity registry in that warehouse: run `outcomes run` first",
                    fg="red", err=True)  # fmt: skip
        sys.exit(1)
    key = _linkage_key() if relink else None
    if key is not None:  # a key the warehouse was not built under: refused before training
        from outcomes.secret import check_key_fingerprint

        try:
            check_key_fingerprint(wh.root, key)
        except LinkageKeyError as e:
            _refused(e)
    version, model = lm.train_version(wh, variants, reason)
    click.echo(f"linkage model version {version} trained on {model.trained_on:,} variants")
    if key is not None:
        from assets.link import relink_warehouse

        out = relink_warehouse(wh, key, version)  # the key was checked above
        click.echo(
            f"re-linked every year: {out.changed_records:,} records changed key "
            f"({out.merges.height:,} merges, {out.splits.height:,} splits recorded); "
            "run `outcomes run` to rebuild the tables made from the links"
        )


@main.command()
@click.argument("sql")
@click.option(
    "--warehouse-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar=ENV_WAREHOUSE_DIR,
    default=DEMO_DIR / "warehouse",
    show_default=True,
)
@click.option("--max-rows", type=int, default=40, show_default=True)
def query(sql: str, warehouse_dir: Path, max_rows: int) -> None:
    """Run SQL over the analytic and published tables (DuckDB views)."""
    from outcomes.query import connect

    con = connect(warehouse_dir)
    try:
        rel = con.sql(sql)
    except Exception as e:  # duckdb raises many kinds; the user needs the message
        click.secho(f"query failed: {e}", fg="red", err=True)
        sys.exit(1)
    if rel is None:
        return
    click.echo(_table(rel.pl(), max_rows))


@main.command("audit-disclosure")
@click.option(
    "--warehouse-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    envvar=ENV_WAREHOUSE_DIR,
    default=DEMO_DIR / "warehouse",
    show_default=True,
)
@click.option(
    "--min-cell",
    type=click.IntRange(min=2),
    default=None,
    help="the limit the release was made with [default: OUTCOMES_MIN_CELL, else 11]",
)
def audit_disclosure(warehouse_dir: Path, min_cell: int | None) -> None:
    """Play the attacker on published/: what every suppressed count can be narrowed to.

    Exits 1 when any suppressed count is recovered or a primary one narrowed.
    """
    from outcomes.config import min_cell_from_env
    from outcomes.indicators import release_audit
    from outcomes.schema import OUTCOME_INDICATORS, OUTCOME_INDICATORS_BY_GROUP
    from outcomes.warehouse import Warehouse

    try:
        limit = min_cell or min_cell_from_env()
    except SettingsError as e:
        _refused(e)
        raise
    wh = Warehouse(warehouse_dir)
    audit = release_audit(wh.read(OUTCOME_INDICATORS), wh.read(OUTCOME_INDICATORS_BY_GROUP), limit)
    click.echo(_table(audit.summary, 200))
    totals = audit.summary.select("suppressed", "recovered", "narrowed").sum().row(0)
    click.echo(
        f"limit {limit}: {totals[0]:,} suppressed cells, {totals[1]:,} recovered exactly, "
        f"{totals[2]:,} primary counts narrowed below {limit - 1} values"
    )
    if not audit.passed:
        click.echo(_table(audit.findings, 200))
        sys.exit(1)


_WAREHOUSE = click.option(
    "--warehouse-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    envvar=ENV_WAREHOUSE_DIR,
    default=DEMO_DIR / "warehouse",
    show_default=True,
)


@main.command()
@_WAREHOUSE
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="the HTML file to write")  # fmt: skip
def report(warehouse_dir: Path, out: Path) -> None:
    """Write one self-contained HTML report of the published tables, for evaluators."""
    from outcomes.report import write_report

    path = write_report(warehouse_dir, out)
    click.echo(f"wrote {path} ({path.stat().st_size / 1024:,.0f} KiB)")


@main.command()
@_WAREHOUSE
@click.argument("indicator")
@click.argument("year", type=int)
def provenance(warehouse_dir: Path, indicator: str, year: int) -> None:
    """What INDICATOR of YEAR was computed from: input files, code version, Dagster run."""
    import polars as pl

    from outcomes.indicators import REGISTRY
    from outcomes.schema import INDICATOR_PROVENANCE
    from outcomes.warehouse import Warehouse

    if indicator not in REGISTRY:
        click.secho(f"unknown indicator {indicator!r}; known: {', '.join(REGISTRY)}",
                    fg="red", err=True)  # fmt: skip
        sys.exit(2)
    wh = Warehouse(warehouse_dir)
    rows = wh.read(INDICATOR_PROVENANCE, [year]).filter(pl.col("indicator_id") == indicator)
    if rows.is_empty():
        years = ", ".join(map(str, wh.years(INDICATOR_PROVENANCE))) or "none"
        message = f"no provenance for {indicator} {year} in {warehouse_dir}; years: {years}"
        click.secho(message, fg="red", err=True)
        sys.exit(1)
    run = rows.select("run_id", "code_version", "computed_at").unique()
    for run_id, version, at in run.iter_rows():
        click.echo(f"{indicator} {year}: computed {at:%Y-%m-%d %H:%M:%S} UTC by Dagster run "
                   f"{run_id}, code {version}")  # fmt: skip
    click.echo(f"from {rows.height} input file(s) (sha256 of the bytes parsed, as in load_ledger):")
    for sha, file in rows.select("file_sha256", "file").iter_rows():
        click.echo(f"  {sha}  {file}")


@main.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("docs"),
              show_default=True)  # fmt: skip
def docs(out: Path) -> None:
    """Regenerate indicators.md and data_dictionary.md from the registry and the tables."""
    from outcomes.docs import write_docs

    for path in write_docs(out):
        click.echo(f"wrote {path}")


def _table(df: pl.DataFrame, max_rows: int) -> str:
    import polars as pl

    with pl.Config(
        tbl_rows=max_rows,
        tbl_cols=-1,
        tbl_width_chars=200,
        tbl_hide_dataframe_shape=False,
        fmt_str_lengths=40,
    ):
        return str(df)
