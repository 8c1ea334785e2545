"""The expectation suites (expectations/*.json) and running them with Great Expectations.

The same suite serves twice: outcomes.validate compiles it to Polars to quarantine
rows, and run_suite() hands it to GX to validate what was staged, so a
disagreement between the two is caught by a blocking check.

GX is imported inside run_suite(): it takes seconds to import and the command
line and the Dagster definitions must stay quick to load.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from outcomes.config import ENV_EXPECTATIONS_DIR
from outcomes.zones import owner_only

SUITES_DIR = Path(__file__).resolve().parent.parent / "expectations"

# GX fingerprints every pandas batch by hashing all of it (seconds at millions of rows);
# the fingerprint is only a batch marker, so it is switched off.
_GX_HASH_THRESHOLD = 0
# counts per rule come from the quarantine; GX answers pass or fail for what was staged
RESULT_FORMAT = "BOOLEAN_ONLY"


def load_suite(name: str) -> dict[str, Any]:
    """A suite as its JSON document; a data engineer edits the file, not Python."""
    return _read_suite(Path(os.environ.get(ENV_EXPECTATIONS_DIR) or SUITES_DIR) / f"{name}.json")


@cache
def _read_suite(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def suite_columns(suite: dict[str, Any]) -> list[str]:
    cols: list[str] = []
    for e in suite["expectations"]:
        for key in ("column", "column_A", "column_B"):
            c = e["kwargs"].get(key)
            if c and c not in cols:
                cols.append(c)
    return cols


@dataclass(frozen=True)
class ExpectationOutcome:
    rule: str
    expectation: str
    column: str
    success: bool
    error: str | None = None  # GX raised: a configuration problem, not bad data


@dataclass
class SuiteResult:
    suite: str
    success: bool
    rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    docs: Path | None = None

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


# ---------------------------------------------------------------- GX representation


def _gx_value(value: Any) -> Any:
    """Dates as pandas-comparable datetimes: GX compares date columns row by row in
    Python, but datetime64 columns against datetime bounds in one vectorised step."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return value


def _gx_kwargs(kwargs: dict[str, Any], dtypes: dict[str, pl.DataType]) -> dict[str, Any]:
    column = kwargs.get("column")
    is_date = column is not None and dtypes.get(column) == pl.Date
    out = {}
    for k, v in kwargs.items():
        if is_date and k in ("min_value", "max_value") and isinstance(v, str):
            v = datetime.fromisoformat(v)
        out[k] = v
    return out


def gx_parameters(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            v = date.fromisoformat(v)
        out[k] = _gx_value(v)
    return out


UNIQUE = "expect_column_values_to_be_unique"
HASHED = "{}__hash"  # GX checks uniqueness on this twin of the column
# parameters whose values belong to one organisation (a partner's own client ids): GX
# checks a whole source-year at once on the twin IN_ORG, org_id and the value joined
ORG_SCOPED = {"known_clients"}
IN_ORG = "{}__in_org"
ORG_SEP = "\x1f"


def in_org(org_id: str, value: str) -> str:
    return f"{org_id}{ORG_SEP}{value}"


def in_org_expr(column: str) -> pl.Expr:
    return pl.concat_str([pl.col("org_id"), pl.col(column)], separator=ORG_SEP)


def org_scoped_columns(suite: dict[str, Any]) -> set[str]:
    """Columns whose value set is an organisation's own ($PARAMETER in ORG_SCOPED)."""
    return {
        e["kwargs"]["column"]
        for e in suite["expectations"]
        if isinstance(v := e["kwargs"].get("value_set"), dict) and v.get("$PARAMETER") in ORG_SCOPED
    }


def unique_columns(suite: dict[str, Any]) -> set[str]:
    return {e["kwargs"]["column"] for e in suite["expectations"] if e["type"] == UNIQUE}


def regex_columns(suite: dict[str, Any]) -> set[str]:
    return {e["kwargs"]["column"] for e in suite["expectations"] if "regex" in e["type"]}


def gx_frame(df: pl.DataFrame, suite: dict[str, Any]):  # -> pandas.DataFrame
    """The pandas frame GX reads, in the representations its pandas engine is fast on.

    Dates become datetime64 (GX compares date objects row by row in Python), floats
    plain numpy, text pandas' own Arrow strings. Uniqueness (in a file: one per
    organisation in a source-year) is checked on a 64-bit hash of org_id and the
    column (HASHED): equal ids have equal hashes, so no duplicate can
    pass, and a collision could only fail the check, never hide a duplicate;
    pandas finds duplicates among integers several times faster than among text.
    """
    import pandas as pd

    present = [c for c in suite_columns(suite) if c in df.columns]
    regex = regex_columns(suite)
    pdf = pd.DataFrame(index=pd.RangeIndex(df.height))
    for c in org_scoped_columns(suite) & set(present):
        scoped = df.select(in_org_expr(c)).to_series()
        pdf[IN_ORG.format(c)] = scoped.to_pandas(use_pyarrow_extension_array=True)
    for c in unique_columns(suite) & set(present):
        # unique in its file: a source-year holds one file per organisation
        col = df.get_column(c)
        scoped = df.select(in_org_expr(c)).to_series() if "org_id" in df.columns else col
        hashed = pl.select(
            pl.when(col.is_not_null()).then(scoped.hash(seed=0).reinterpret(signed=True))
        ).to_series()
        pdf[HASHED.format(c)] = hashed.to_pandas(use_pyarrow_extension_array=hashed.has_nulls())
    for c in present:
        col, dtype = df.get_column(c), df.schema[c]
        if dtype == pl.Date:
            pdf[c] = col.cast(pl.Datetime("ns")).to_pandas()
        elif dtype == pl.Float64:
            pdf[c] = col.to_pandas()  # NaN for null: GX counts it missing
        elif dtype in (pl.Int64, pl.Boolean):  # pandas' nullable types: GX knows their names
            pdf[c] = col.to_pandas().astype("Int64" if dtype == pl.Int64 else "boolean")
        elif c in regex:  # pandas' own Arrow strings: GX's astype(str) before a regex is free
            pdf[c] = col.to_pandas(use_pyarrow_extension_array=True).astype("str")
        else:
            pdf[c] = col.to_pandas(use_pyarrow_extension_array=True)
    return pdf


# ---------------------------------------------------------------- running GX


def _tune_pandas_engine() -> None:
    """Two measured fixes to GX's pandas engine (benchmarks/validation.py measures them):

    - no fingerprint hash of the whole batch (it is a batch marker, not a check);
    - a column expectation sees only its own columns: GX filters the batch's rows
      for each expectation, and copying every column each time cost more than the
      checks themselves at millions of rows.
    """
    import great_expectations.execution_engine.pandas_execution_engine as engine

    engine.HASH_THRESHOLD = _GX_HASH_THRESHOLD
    cls = engine.PandasExecutionEngine
    if getattr(cls.get_domain_records, "narrowed", False):
        return
    records = cls.get_domain_records

    def get_domain_records(self, domain_kwargs: dict):
        data = records(self, domain_kwargs)
        columns = [
            domain_kwargs[k] for k in ("column", "column_A", "column_B") if k in domain_kwargs
        ]
        columns = columns or list(domain_kwargs.get("column_list") or [])
        if columns and len(columns) < data.shape[1] and set(columns) <= set(data.columns):
            return data[columns]
        return data

    get_domain_records.narrowed = True  # type: ignore[attr-defined]
    cls.get_domain_records = get_domain_records


def _context(docs_dir: Path | None):
    import great_expectations as gx

    _tune_pandas_engine()
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = {"globally": False}
    if docs_dir is not None:
        ctx.add_data_docs_site(
            site_name="restricted",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
            },
        )
    return ctx


def _gx_suite(gx, name: str, suite: dict[str, Any], dtypes: dict[str, pl.DataType]):
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    out = gx.ExpectationSuite(name=name, meta={"notes": suite.get("meta", {}).get("notes")})
    scoped = org_scoped_columns(suite)
    for e in suite["expectations"]:
        kwargs = _gx_kwargs(e["kwargs"], dtypes)
        if e["type"] == UNIQUE:
            kwargs["column"] = HASHED.format(kwargs["column"])
        elif kwargs.get("column") in scoped:
            kwargs["column"] = IN_ORG.format(kwargs["column"])
        out.add_expectation_configuration(
            ExpectationConfiguration(type=e["type"], kwargs=kwargs, meta=e.get("meta"))
        )
    return out


def run_suite(
    name: str,
    batches: dict[str, tuple[pl.DataFrame, dict[str, Any]]],
    dtypes: dict[str, pl.DataType],
    docs_dir: Path | None = None,
    suite: dict[str, Any] | None = None,
) -> dict[str, SuiteResult]:
    """Validate each batch (label -> frame, suite parameters) with GX.

    One GX checkpoint validates every batch; with docs_dir, GX writes its Data Docs
    there (they may show failing values: keep docs_dir in the restricted zone).
    """
    import great_expectations as gx

    suite = suite or load_suite(name)
    ctx = _context(docs_dir)
    gx_suite = ctx.suites.add(_gx_suite(gx, name, suite, dtypes))
    source = ctx.data_sources.add_pandas(name)
    results: dict[str, SuiteResult] = {}
    for label, (df, params) in batches.items():
        asset = source.add_dataframe_asset(label)
        definition = ctx.validation_definitions.add(
            gx.ValidationDefinition(
                name=label, data=asset.add_batch_definition_whole_dataframe(label), suite=gx_suite
            )
        )
        actions = (
            [gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["restricted"])]
            if docs_dir is not None
            else []
        )
        checkpoint = ctx.checkpoints.add(
            gx.Checkpoint(
                name=f"{label} checkpoint",
                validation_definitions=[definition],
                actions=actions,
                result_format=RESULT_FORMAT,
            )
        )
        run = checkpoint.run(
            batch_parameters={"dataframe": gx_frame(df, suite)},
            expectation_parameters=gx_parameters(params),
        )
        validation = next(iter(run.run_results.values()))
        results[label] = SuiteResult(
            suite=name,
            success=bool(validation.success),
            rows=df.height,
            outcomes=[_outcome(r) for r in validation.results],
            docs=(docs_dir / "index.html") if docs_dir is not None else None,
        )
    if docs_dir is not None:
        owner_only(docs_dir)  # Data Docs may show failing values
    return results


def _raised(info: dict) -> str:
    """What GX raised, by kind only: its message can quote the values it failed on."""
    lines = str(info.get("exception_traceback") or "").strip().splitlines()
    kind = lines[-1].split(":", 1)[0].strip() if lines else "an error"
    return f"GX raised {kind} (its message is not shown: it can quote values)"


def _outcome(r: Any) -> ExpectationOutcome:
    cfg = r.expectation_config
    kwargs = cfg.kwargs
    raised = (r.exception_info or {}).get("raised_exception")
    return ExpectationOutcome(
        rule=(cfg.meta or {}).get("rule", cfg.type),
        expectation=cfg.type,
        column=(
            kwargs.get("column") or f"{kwargs.get('column_A')}, {kwargs.get('column_B')}"
        ).removesuffix(HASHED.format("")).removesuffix(IN_ORG.format("")),
        success=bool(r.success) and not raised,
        error=_raised(r.exception_info) if raised else None,
    )
