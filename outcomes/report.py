"""`outcomes report`: one self-contained HTML file for evaluators.

Per indicator its definition, the state and county trends, the impact estimates and
the event study; then the data-quality summary (files, rows, quarantine counts by
rule, linkage coverage). It reads the published tables and, from the other zones,
aggregate counts only: no row of microdata reaches the page. Charts are inline SVG
(no server, no network), each with a text alternative and its numbers in a table.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from outcomes import schema, views
from outcomes.charts import Chart
from outcomes.docs import definition_rows
from outcomes.impact import EVENT_TIME
from outcomes.indicators import REGISTRY, Indicator
from outcomes.provenance import code_version
from outcomes.warehouse import Warehouse

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2933;
line-height:1.45}
header,main,nav{max-width:62rem;margin:0 auto;padding:0 1rem}
header{padding-top:1.5rem}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{font-size:1.3rem;border-top:2px solid #d9e2ec;padding-top:1rem;margin-top:2rem}
h3{font-size:1.05rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}
caption{text-align:left;font-weight:600;padding:.2rem 0}
th,td{border:1px solid #d9e2ec;padding:.2rem .45rem;text-align:left;vertical-align:top}
th{background:#f0f4f8}
td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1rem 0}
figcaption{font-size:.85rem;color:#52606d}
svg{max-width:100%;height:auto}
.note{font-size:.85rem;color:#52606d}
"""


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows: published tables and aggregate counts only."""

    indicators: pl.DataFrame  # published outcome_indicators, every year
    impact: pl.DataFrame  # published partnership_impact
    files: pl.DataFrame  # per source and year: files, rows read, staged, quarantined
    quarantine: pl.DataFrame  # per source and rule: rows
    linkage: pl.DataFrame  # per year and source: records, share linked to another source
    code_version: str
    generated_at: dt.datetime


def _files(ledger: pl.DataFrame) -> pl.DataFrame:
    return (
        ledger.group_by("source", "year")
        .agg(
            pl.len().alias("files"),
            *(pl.col(c).sum() for c in ("rows_read", "rows_staged", "rows_quarantined")),
        )
        .sort("year", "source")
    )


def _quarantine_by_rule(quarantine: pl.LazyFrame) -> pl.DataFrame:
    """Rows per source and rule (a row breaking two rules counts under both)."""
    return (
        quarantine.select("source", pl.col("reasons").alias("rule"))
        .explode("rule")
        .group_by("source", "rule")
        .agg(pl.len().alias("rows"))
        .sort("source", pl.col("rows"), "rule", descending=[False, True, False])
        .collect()
    )


def _linkage(links: pl.LazyFrame) -> pl.DataFrame:
    """Per year and source: records, and the share whose person appears in another source."""
    sources = links.group_by("person_key").agg(pl.col("source").n_unique().alias("sources"))
    return (
        links.select("source", "year", "person_key")
        .join(sources, on="person_key")
        .group_by("year", "source")
        .agg(
            pl.len().alias("records"),
            (pl.col("sources") > 1).mean().round(4).alias("share_linked_to_another_source"),
        )
        .sort("year", "source")
        .collect()
    )


def gather(wh: Warehouse) -> ReportData:
    """The report's inputs from a warehouse; identifiers and rows never leave this call."""
    return ReportData(
        indicators=wh.read(schema.OUTCOME_INDICATORS),
        impact=wh.read(schema.PARTNERSHIP_IMPACT),
        files=_files(wh.read(schema.LOAD_LEDGER)),
        quarantine=_quarantine_by_rule(wh.scan(schema.QUARANTINE)),
        linkage=_linkage(wh.scan(schema.RECORD_LINKS)),
        code_version=code_version(),
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
    )


# ---------------------------------------------------------------- HTML


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    try:
        float(value)  # a chart's numbers come as text: "0.31" or "suppressed"
    except (TypeError, ValueError):
        return False
    return True


def _cell(value: object) -> str:
    number = _is_number(value)
    return f'<td class="n">{_e(value)}</td>' if number else f"<td>{_e(value)}</td>"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], caption: str) -> str:
    """A table whose first column heads its rows; numbers align right."""
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in header)
    body = "".join(
        f'<tr><th scope="row">{_e(row[0])}</th>{"".join(_cell(v) for v in row[1:])}</tr>'
        for row in rows
    )
    return (
        f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _frame_table(df: pl.DataFrame, caption: str) -> str:
    return _table(df.columns, df.iter_rows(), caption)


def _figure(chart: Chart) -> str:
    """Inline SVG named by its text alternative, then the same numbers as a table."""
    svg = chart.svg().replace(
        "<svg ", f'<svg role="img" aria-label="{_e(chart.alt)}" focusable="false" ', 1
    )
    return (
        f'<figure data-chart="{_e(chart.key)}" data-marks="{chart.marks}">{svg}'
        f"<figcaption>{_e(chart.alt)}</figcaption></figure>"
        + _frame_table(chart.table, f"The numbers of the chart: {chart.title}")
    )


def _estimates(ind: Indicator, impact: pl.DataFrame) -> str:
    rows = impact.filter(pl.col("indicator_id") == ind.indicator_id)
    if rows.is_empty():
        return '<p class="note">No impact estimates for this indicator.</p>'
    shown = rows.filter(pl.col("estimand") != EVENT_TIME).select(
        "estimand", "estimate", "std_error", "ci_low", "ci_high", "p_value",
        "n_treated_counties", "n_control_counties", pl.col("suppression").fill_null(""),
    )  # fmt: skip
    methods = rows.select("estimand", "method").unique(maintain_order=True).drop_nulls()
    return _frame_table(
        shown.with_columns(pl.col(pl.Float64).round(4)), "Overall effect and pre-trend test"
    ) + "".join(f'<p class="note">{_e(e)}: {_e(m)}</p>' for e, m in methods.iter_rows())


def _indicator_section(ind: Indicator, data: ReportData) -> str:
    i = ind.indicator_id
    return "".join(
        [
            f'<section id="{i}" aria-labelledby="h-{i}"><h2 id="h-{i}">{_e(ind.title)}</h2>',
            f"<p><code>{_e(i)}</code>: {_e(ind.description)}</p>",
            _table(["", "definition"], definition_rows(ind), "Definition"),
            "<h3>State and county trends</h3>",
            _figure(views.trend(i, data.indicators)),
            "<h3>Impact of the partnerships</h3>",
            _estimates(ind, data.impact),
            _figure(views.event_study(i, data.impact)),
            "</section>",
        ]
    )


def _quality_section(data: ReportData) -> str:
    return "".join(
        [
            '<section id="data-quality" aria-labelledby="h-dq">',
            '<h2 id="h-dq">Data quality</h2>',
            _frame_table(data.files.select("source", pl.exclude("source")), "Files and rows"),
            _frame_table(data.quarantine, "Quarantined rows by rule"),
            _frame_table(
                data.linkage.select("source", pl.exclude("source")), "Linkage coverage"
            ),
            "</section>",
        ]
    )


def render(data: ReportData) -> str:
    years = sorted(data.indicators.get_column("year").unique().to_list())
    span = f"{years[0]}-{years[-1]}" if years else "no years"
    nav = "".join(
        f'<li><a href="#{i.indicator_id}">{_e(i.title)}</a></li>' for i in REGISTRY.values()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Partnership outcomes {span}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>Partnership outcomes, {span}</h1>"
        f'<p class="note">From the published tables only. Code {_e(data.code_version)}, '
        f"generated {_e(data.generated_at.isoformat())}. Suppressed cells are gaps in the "
        "charts and read <q>suppressed</q> in the tables.</p></header>"
        f'<nav aria-label="Contents"><ul>{nav}<li><a href="#data-quality">Data quality</a>'
        "</li></ul></nav><main>"
        + "".join(_indicator_section(i, data) for i in REGISTRY.values())
        + _quality_section(data)
        + "</main></body></html>\n"
    )


def write_report(warehouse_dir: Path, out: Path) -> Path:
    text = render(gather(Warehouse(warehouse_dir)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
