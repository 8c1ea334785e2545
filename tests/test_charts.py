"""Charts: real PNG images of the numbers given, with the numbers as their text alternative."""

import base64
import io
import re

import polars as pl

from outcomes.charts import bar_chart_markdown, bar_chart_png, markdown_rows


def test_bar_chart_is_a_png_of_the_size_declared_and_repeatable():
    from PIL import Image

    df = pl.DataFrame({"weight": [-4, -2, 0, 2], "pairs": [10, 3, 1, 40]})
    png = bar_chart_png(df, "weight", "pairs", "Pairs")
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size == (576, 288)
    # the bars are drawn: the bar colour covers part of the image
    colours = {c for _, c in img.convert("RGB").getcolors(maxcolors=1 << 20)}
    assert (0x3B, 0x6E, 0xA5) in colours
    assert bar_chart_png(df, "weight", "pairs", "Pairs") == png
    assert bar_chart_png(df.with_columns(pl.col("pairs") * 2), "weight", "pairs", "Pairs") != png


def test_markdown_embeds_the_image_and_the_numbers():
    df = pl.DataFrame({"records": [1, 2], "persons": [5, 7]})
    md = bar_chart_markdown(df, "records", "persons", "Persons")
    found = re.match(r"!\[([^\]]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", md)
    assert found and "persons by records" in found.group(1)
    assert base64.b64decode(found.group(2)).startswith(b"\x89PNG")
    assert md.endswith(markdown_rows(["records", "persons"], [(1, 5), (2, 7)]))
    assert "| 2 | 7 |" in md
