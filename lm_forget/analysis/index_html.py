"""Every page of a report as HTML: the markdown of an ``index.md`` rendered by markdown-it-py (CommonMark plus pipe
tables) with one stylesheet — the one renderer from markdown to HTML, for the study index
(:mod:`lm_forget.analysis.study_index`) and for each per-size report (:mod:`lm_forget.analysis.writer`). An image
alone in its paragraph becomes a captioned ``<figure>``. On the study index figures stay files (``<img src>`` is
the markdown's relative path) and a link to a report's ``index.md`` points to its ``index.html`` where that file
exists; a per-size report's page embeds its figures (base64 PNG), so it reads as one file.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from pathlib import Path

CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
        "table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px}"
        "th{background:#f3f3f3}img{max-width:100%}figcaption{font-size:12px;color:#555}")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LONE_IMAGE = re.compile(r'<p>(<img src="[^"]*" alt="([^"]*)"\s*/?>)</p>')


def markdown_html(text: str, href: Callable[[str], str] = str, src: Callable[[str], str] = str) -> str:
    """The markdown as an HTML fragment: CommonMark with tables (raw HTML in the text stays text); every link
    target passed through ``href`` and every image source through ``src``; a lone image as a captioned figure."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    for token in tokens:
        for child in token.children or ():
            if child.type == "link_open":
                child.attrSet("href", href(str(child.attrGet("href"))))
            elif child.type == "image":
                child.attrSet("src", src(str(child.attrGet("src"))))
    body = md.renderer.render(tokens, md.options, {})
    return _LONE_IMAGE.sub(lambda m: f"<figure>{m[1]}<figcaption>{m[2]}</figcaption></figure>", body)


def html_page(markdown: str, href: Callable[[str], str] = str, src: Callable[[str], str] = str) -> str:
    """A whole HTML page of ``markdown`` (title: its first ``#`` heading; see :func:`markdown_html`)."""
    title = next((m[2] for line in markdown.splitlines() if (m := _HEADING.match(line)) and m[1] == "#"), "report")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n{markdown_html(markdown, href, src)}\n</body></html>\n")


def inline_image(folder: Path) -> Callable[[str], str]:
    """An image source -> the PNG under ``folder`` as a ``data:`` URI (a page that reads as one file)."""
    def src(target: str) -> str:
        if "://" in target or target.startswith("data:"):
            return target
        return "data:image/png;base64," + base64.b64encode((folder / target).read_bytes()).decode("ascii")

    return src


def write_index_html(folder: Path, markdown: str) -> Path:
    """Write ``folder/index.html`` from the index's ``markdown``: title = its first heading; a link to a
    report's ``index.md`` goes to that report's ``index.html`` where it exists."""

    def href(target: str) -> str:
        if target.endswith("index.md") and "://" not in target and (folder / target).with_suffix(".html").is_file():
            return target.removesuffix(".md") + ".html"
        return target

    path = folder / "index.html"
    path.write_text(html_page(markdown, href), encoding="utf-8")
    return path
