"""The study index as HTML: the markdown of ``index.md`` (assembled in :mod:`lm_forget.run.steps.analyze`)
rendered to ``index.html`` beside it by markdown-it-py (CommonMark plus pipe tables), with the per-size reports'
stylesheet. Figures stay files: ``<img src>`` is the markdown's relative path, and an image alone in its paragraph
becomes a captioned ``<figure>`` like a report's. A link to a report's ``index.md`` points to its ``index.html``
where that file exists.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

from lm_forget.analysis.report import _CSS

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LONE_IMAGE = re.compile(r'<p>(<img src="[^"]*" alt="([^"]*)"\s*/?>)</p>')


def markdown_html(text: str, href: Callable[[str], str] = str) -> str:
    """The markdown as an HTML fragment: CommonMark with tables (raw HTML in the text stays text); every link
    target passed through ``href``; a lone image as a captioned figure."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    for token in tokens:
        for child in token.children or ():
            if child.type == "link_open":
                child.attrSet("href", href(str(child.attrGet("href"))))
    body = md.renderer.render(tokens, md.options, {})
    return _LONE_IMAGE.sub(lambda m: f"<figure>{m[1]}<figcaption>{m[2]}</figcaption></figure>", body)


def write_index_html(folder: Path, markdown: str) -> Path:
    """Write ``folder/index.html`` from the index's ``markdown``: title = its first heading; a link to a
    report's ``index.md`` goes to that report's ``index.html`` where it exists."""

    def href(target: str) -> str:
        if target.endswith("index.md") and "://" not in target and (folder / target).with_suffix(".html").is_file():
            return target.removesuffix(".md") + ".html"
        return target

    title = next((m[2] for line in markdown.splitlines() if (m := _HEADING.match(line)) and m[1] == "#"), "study")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n{markdown_html(markdown, href)}\n</body></html>\n")
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
