"""Charts for asset metadata and the report, drawn from aggregates only (never rows).

A `Chart` keeps what it draws and the numbers it shows side by side: the Dagster UI
gets it as Markdown (a PNG inline, then the same numbers as a table: the chart's
text alternative), the report as inline SVG with the table beneath. Every drawn
point is one *mark* in the SVG (`<g id="marks-...">`), so a test can count them
against the published cells the chart shows.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from matplotlib.axes import Axes

WIDTH_IN, HEIGHT_IN, DPI = 6.0, 3.0, 96
COLOUR = "#3b6ea5"  # bars, the state line, estimates
MUTED = "#9aa5b1"  # county lines
ZERO_LINE = "#444444"
MISSING = "suppressed"  # how a hidden cell reads in a chart's table


def markdown_rows(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows]) + "\n"


def markdown_table(df: pl.DataFrame) -> str:
    return markdown_rows(df.columns, df.iter_rows())


@dataclass(frozen=True)
class Chart:
    key: str  # unique within a page: ids of its SVG elements start with it
    title: str
    alt: str  # the chart in words; its numbers are in `table`
    table: pl.DataFrame
    marks: int  # points drawn
    draw: Callable[[Axes], None]

    def _render(self, fmt: str) -> bytes:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        # svg.hashsalt: the same numbers give the same bytes, and ids differ between charts
        with matplotlib.rc_context({"svg.hashsalt": self.key, "svg.fonttype": "none"}):
            fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
            try:
                self.draw(ax)
                ax.set_title(self.title, fontsize=10)
                fig.tight_layout()
                buf = io.BytesIO()
                meta = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
                fig.savefig(buf, format=fmt, metadata=meta)
                return buf.getvalue()
            finally:
                plt.close(fig)

    def png(self) -> bytes:
        return self._render("png")

    def svg(self) -> str:
        """The SVG element alone (no XML prolog), to inline in HTML."""
        text = self._render("svg").decode("utf-8")
        return text[text.index("<svg") :]

    def markdown(self) -> str:
        """The chart inline (base64 PNG) with its numbers beneath as the text alternative."""
        png = base64.b64encode(self.png()).decode("ascii")
        return f"![{self.alt}](data:image/png;base64,{png})\n\n{markdown_table(self.table)}"


def bar_chart(df: pl.DataFrame, x: str, y: str, title: str, log_y: bool = False) -> Chart:
    """Column y as bars over the categories (or bins) in column x."""
    labels, heights = [str(v) for v in df.get_column(x).to_list()], df.get_column(y).to_list()

    def draw(ax: Axes) -> None:
        ax.bar(labels, heights, color=COLOUR, gid=f"marks-{y}")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if log_y:
            ax.set_yscale("log")
        ax.tick_params(axis="x", labelrotation=90 if df.height > 12 else 0, labelsize=8)

    alt = f"{title}: {y} by {x}; the numbers are in the table below"
    return Chart(f"bars-{y}-{x}", title, alt, df, df.height, draw)


def bar_chart_png(df: pl.DataFrame, x: str, y: str, title: str, log_y: bool = False) -> bytes:
    return bar_chart(df, x, y, title, log_y).png()


def bar_chart_markdown(df: pl.DataFrame, x: str, y: str, title: str, log_y: bool = False) -> str:
    return bar_chart(df, x, y, title, log_y).markdown()


def _shown(column: str, digits: int) -> pl.Expr:
    """A number as the chart's table shows it: rounded, or `suppressed` where hidden."""
    c = pl.col(column)
    shown = pl.when(c.is_null()).then(pl.lit(MISSING)).otherwise(c.round(digits).cast(pl.String))
    return shown.alias(column)


def trend_chart(key: str, title: str, values: pl.DataFrame, state: str, digits: int) -> Chart:
    """One line per county and a bold one for the state (`state`, e.g. ALL) over the years.

    `values` has columns year, county_fips, value; a null value (a suppressed cell) is a
    gap in its line and no mark.
    """
    years = sorted(values.get_column("year").unique().to_list())
    wide = values.pivot(on="year", index="county_fips", values="value", sort_columns=True).sort(
        pl.col("county_fips") != state, "county_fips"
    )
    series = {row[0]: [row[1 + i] for i in range(len(years))] for row in wide.iter_rows()}
    marks = sum(v is not None for line in series.values() for v in line)

    def draw(ax: Axes) -> None:
        for n, (county, line) in enumerate(series.items()):
            ys = [math.nan if v is None else v for v in line]
            bold = county == state
            label = "state" if bold else ("counties" if n == (state in series) else None)
            ax.plot(
                years,
                ys,
                color=COLOUR if bold else MUTED,
                linewidth=2.2 if bold else 0.8,
                zorder=3 if bold else 2,
                label=label,
            )
            shown = [(x, v) for x, v in zip(years, line, strict=True) if v is not None]
            if shown:
                ax.scatter(
                    *zip(*shown, strict=True),
                    s=14 if bold else 6,
                    zorder=4,
                    color=COLOUR if bold else MUTED,
                    gid=f"marks-{key}-{county}",
                )
        ax.set_xticks(years)
        ax.set_xlabel("year")
        if series:
            ax.legend(loc="best", fontsize=8, frameon=False)

    table = wide.select(
        pl.col("county_fips").alias("county"),
        *(_shown(str(y), digits) for y in years),
    )
    counties = len(series) - (state in series)
    alt = (
        (
            f"{title}: the state (bold) and {counties} counties over {years[0]}-{years[-1]}; "
            f"{marks} published values, suppressed ones are gaps; the numbers are in the table "
            "below"
        )
        if years
        else f"{title}: nothing published"
    )
    return Chart(key, title, alt, table, marks, draw)


def event_study_chart(key: str, title: str, effects: pl.DataFrame, digits: int) -> Chart:
    """Event-time effects with their 95% intervals; an unpublished estimate is no mark.

    `effects` has columns event_time, estimate, ci_low, ci_high, suppression.
    """
    effects = effects.sort("event_time")
    shown = effects.filter(pl.col("estimate").is_not_null())
    t, est = shown.get_column("event_time").to_list(), shown.get_column("estimate").to_list()
    low, high = shown.get_column("ci_low").to_list(), shown.get_column("ci_high").to_list()

    def draw(ax: Axes) -> None:
        ax.axhline(0.0, color=ZERO_LINE, linewidth=0.8)
        ax.axvline(-0.5, color=MUTED, linewidth=0.8, linestyle="--")
        if t:
            ax.vlines(t, low, high, color=COLOUR, linewidth=1.2)
            ax.scatter(t, est, color=COLOUR, s=16, zorder=3, gid=f"marks-{key}")
        ax.set_xlabel("years since the first partnership")
        ax.set_ylabel("effect")

    table = effects.select(
        "event_time",
        *(_shown(c, digits) for c in ("estimate", "ci_low", "ci_high")),
        pl.col("suppression").fill_null(""),
    )
    alt = (
        f"{title}: {len(t)} published event-time effects with 95% intervals, of "
        f"{effects.height}; the numbers are in the table below"
    )
    return Chart(key, title, alt, table, len(t), draw)
