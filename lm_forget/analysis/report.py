"""The report's formatting, in one place: numbers and intervals as table cells and text (:func:`fmt`,
:func:`ci_text`, :func:`ci_of`), markdown tables, and a per-size report's list of blocks rendered to the text of
its ``index.md`` (figures linked by their path relative to the report folder). Every page's HTML is that markdown
rendered by :mod:`lm_forget.analysis.index_html`; :mod:`lm_forget.analysis.writer` writes the files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def fmt(value, digits: int = 3) -> str:
    """A table cell: floats rounded, NaN as an em dash."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def num(value: Any) -> float:
    """``value`` as a float; NaN when it is not a number (a missing cell, a verdict word)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def ci_text(value: Any, low: Any, high: Any, digits: int = 3) -> str:
    """``0.487 [0.374, 0.602]``; ``undefined`` without a value."""
    v, lo, hi = num(value), num(low), num(high)
    if not math.isfinite(v):
        return "undefined"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{v:.{digits}f} [interval undefined]"
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def why_undefined(row: Any) -> str:
    """`` (why)`` after a statistic whose interval is undefined and whose row says why (``ci_method``)."""
    how = str(row.get("ci_method") or "")
    if math.isfinite(num(row.get("ci_low"))) or not how.startswith("undefined: "):
        return ""
    return f" ({how.removeprefix('undefined: ')})"


def ci_of(row: Any, name: str, digits: int = 3) -> str:
    """``ci_text`` of the columns ``name``, ``name_lo``, ``name_hi`` of ``row`` (``undefined`` where missing)."""
    return ci_text(row.get(name), row.get(f"{name}_lo"), row.get(f"{name}_hi"), digits)


def markdown_table(frame, digits: int = 3) -> str:
    """A GitHub markdown table (no tabulate dependency)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v, digits).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


@dataclass
class Report:
    """Blocks of the report, in order: ("h", (level, text)), ("p", text), ("ul", items),
    ("table", frame), ("fig", (image path relative to the report folder, caption))."""

    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("h", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: list[str]) -> None:
        self.blocks.append(("ul", list(items)))

    def table(self, frame) -> None:
        self.blocks.append(("table", frame))

    def figure(self, png: Path, caption: str) -> None:
        self.blocks.append(("fig", (Path(png), caption)))

    def to_markdown(self, formats: Sequence[str] = ("png", "pdf")) -> str:
        """The markdown text; a figure links its PDF too when ``formats`` (the saved ones) include it."""
        parts = [f"# {self.title}"]
        for kind, payload in self.blocks:
            if kind == "h":
                level, text = payload
                parts.append(f"{'#' * level} {text}")
            elif kind == "p":
                parts.append(str(payload))
            elif kind == "ul":
                parts.append("\n".join(f"- {item}" for item in payload))
            elif kind == "table":
                parts.append(markdown_table(payload))
            elif kind == "fig":
                png, caption = payload
                extra = f" ([PDF]({png.with_suffix('.pdf').as_posix()}))" if "pdf" in formats else ""
                parts.append(f"![{caption}]({png.as_posix()})\n\n*{caption}*{extra}")
        return "\n\n".join(parts) + "\n"
