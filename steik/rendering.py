"""Rendering of result tables as Markdown and HTML: the paper's rows marked apart from ours.

A table is a DataFrame; a row whose `source` column is `paper` holds the paper's numbers, which
the Markdown shows in italics and the HTML in grey italics. Numbers print with four significant
digits, NaN as an empty cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

Section = tuple[str, str, pd.DataFrame]
"""(heading, note, table) of one part of a page."""


def format_cell(value: object) -> str:
    """A table cell as text: floats with four significant digits, NaN or infinity empty."""
    if isinstance(value, float | np.floating):
        return "" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def markdown_table(table: pd.DataFrame) -> str:
    """`table` as a Markdown table, the paper's rows' method in italics and marked `(paper)`."""
    shown = table.map(format_cell)
    if "source" in shown.columns:
        paper = shown["source"] == "paper"
        shown.loc[paper, "method"] = "*" + shown.loc[paper, "method"] + " (paper)*"
    return shown.to_markdown(index=False)


CSS = (
    "<style>table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    "th,td{border:1px solid #bbb;padding:2px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}body{font-family:sans-serif}</style>"
)
"""The style of every HTML page."""


def html_table(table: pd.DataFrame) -> str:
    """`table` as an HTML table, the paper's rows in grey italics and marked `(paper)`."""

    def paper_style(row: pd.Series) -> list[str]:
        mark = "color:#666;font-style:italic" if row.get("source") == "paper" else ""
        return [mark] * len(row)

    table = table.copy()
    if "source" in table.columns:
        paper = table["source"] == "paper"
        table.loc[paper, "method"] = table.loc[paper, "method"] + " (paper)"
    styler = table.style.apply(paper_style, axis=1).format(format_cell).hide(axis="index")
    return styler.to_html()


def render_markdown(sections: Sequence[Section]) -> str:
    """Sections as Markdown: a heading, a note and a table each."""
    parts = []
    for heading, note, table in sections:
        parts += [f"## {heading}", "", note, "", markdown_table(table), ""]
    return "\n".join(parts)


def render_html(title: str, sections: Sequence[Section]) -> str:
    """Sections as one HTML page (paper rows greyed out)."""
    parts = [f"<html><head><meta charset='utf-8'><title>{title}</title>{CSS}</head><body>"]
    for heading, note, table in sections:
        parts += [f"<h2>{heading}</h2>", f"<p>{note}</p>", html_table(table)]
    parts.append("</body></html>")
    return "\n".join(parts)
