"""Charts as PNG images, for asset metadata and reports (aggregates only, never rows).

Each chart is drawn from a small aggregate frame and returned as Markdown that
embeds the image (the Dagster UI renders it) followed by the same numbers as a
table, so the chart has a text alternative.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence

import polars as pl

WIDTH_IN, HEIGHT_IN, DPI = 6.0, 3.0, 96
COLOUR = "#3b6ea5"


def markdown_rows(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows]) + "\n"


def markdown_table(df: pl.DataFrame) -> str:
    return markdown_rows(df.columns, df.iter_rows())


def bar_chart_png(df: pl.DataFrame, x: str, y: str, title: str, log_y: bool = False) -> bytes:
    """A bar chart of column y over the categories (or bins) in column x."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    try:
        ax.bar([str(v) for v in df.get_column(x).to_list()], df.get_column(y).to_list(),
               color=COLOUR)  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if log_y:
            ax.set_yscale("log")
        ax.tick_params(axis="x", labelrotation=90 if df.height > 12 else 0, labelsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        # no timestamp in the file: the same numbers give the same bytes
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


def bar_chart_markdown(df: pl.DataFrame, x: str, y: str, title: str, log_y: bool = False) -> str:
    """The chart inline (base64 PNG) with its numbers beneath as the text alternative."""
    png = base64.b64encode(bar_chart_png(df, x, y, title, log_y)).decode("ascii")
    alt = f"{title}: {y} by {x}; the numbers are in the table below"
    return f"![{alt}](data:image/png;base64,{png})\n\n{markdown_table(df)}"
