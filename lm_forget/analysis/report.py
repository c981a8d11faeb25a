"""The report's formatting, in one place: numbers and intervals as table cells and text (:func:`fmt`,
:func:`ci_text`, :func:`ci_of`), markdown tables, and one list of blocks rendered to the text of ``index.md``
(figures linked) and of a self-contained ``index.html`` (figures embedded as base64 PNG). Figures are named by
their path relative to the report folder; :mod:`lm_forget.analysis.writer` writes the files."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Sequence
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


def _html_table(frame, digits: int = 3) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v, digits))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
        "table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px}"
        "th{background:#f3f3f3}img{max-width:100%}figcaption{font-size:12px;color:#555}")


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

    def to_html(self, read: Callable[[Path], bytes]) -> str:
        """The HTML text; ``read(path)`` gives a figure's image bytes (path relative to the report folder)."""
        parts = [f"<h1>{html.escape(self.title)}</h1>"]
        for kind, payload in self.blocks:
            if kind == "h":
                level, text = payload
                parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
            elif kind == "p":
                parts.append(f"<p>{html.escape(str(payload))}</p>")
            elif kind == "ul":
                parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in payload) + "</ul>")
            elif kind == "table":
                parts.append(_html_table(payload))
            elif kind == "fig":
                png, caption = payload
                data = base64.b64encode(read(png)).decode("ascii")
                parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n")
