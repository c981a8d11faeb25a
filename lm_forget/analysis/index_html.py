"""The study index as HTML: the markdown of ``index.md`` (assembled in :mod:`lm_forget.run.steps.analyze`)
rendered to ``index.html`` beside it, with the per-size reports' stylesheet.

No markdown library: like :func:`lm_forget.analysis.report.markdown_table`, this renders exactly the subset the
index is written in: ``#`` headings, paragraphs, ``-`` lists (nested by indentation), pipe tables (with
tabulate's alignment row), and inline code, links, images, ``**bold**``, ``*italic*`` and backslash escapes.
Anything else is kept as escaped text. Figures stay files: ``<img src>`` is the markdown's relative path. A link
to a report's ``index.md`` points to its ``index.html`` where that file exists.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

from lm_forget.analysis.report import _CSS

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ITEM = re.compile(r"^( *)[-*+]\s+(.*)$")
_FIGURE = re.compile(r"!\[([^\]]*)\]\([^)\s]+\)")
_RULE = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_INLINE = re.compile(r"\\(?P<esc>[!-/:-@\[-`{-~])|(?P<tick>`+)(?P<code>.+?)(?P=tick)"
                     r"|!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)|\[(?P<text>[^\]]+)\]\((?P<href>[^)\s]+)\)"
                     r"|\*\*(?P<bold>\S(?:.*?\S)?)\*\*|\*(?P<em>[^*\s](?:[^*]*?[^*\s])?)\*")


def inline(text: str, href: Callable[[str], str]) -> str:
    """One line of markdown inline syntax as HTML (text escaped)."""
    parts, pos = [], 0
    for m in _INLINE.finditer(text):
        parts.append(html.escape(text[pos:m.start()]))
        pos = m.end()
        if m["esc"] is not None:
            parts.append(html.escape(m["esc"]))
        elif m["code"] is not None:
            parts.append(f"<code>{html.escape(m['code'].strip())}</code>")
        elif m["src"] is not None:
            parts.append(f'<img src="{html.escape(m["src"])}" alt="{html.escape(m["alt"])}">')
        elif m["href"] is not None:
            parts.append(f'<a href="{html.escape(href(m["href"]))}">{inline(m["text"], href)}</a>')
        elif m["bold"] is not None:
            parts.append(f"<strong>{inline(m['bold'], href)}</strong>")
        else:
            parts.append(f"<em>{inline(m['em'], href)}</em>")
    return "".join(parts) + html.escape(text[pos:])


def _cells(row: str) -> list[str]:
    row = row.strip().removeprefix("|")
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row)]


def _table(rows: list[str], href: Callable[[str], str]) -> str:
    aligns = []
    for rule in _cells(rows[1]):
        side = ("center" if rule.startswith(":") and rule.endswith(":") else "right" if rule.endswith(":")
                else "left" if rule.startswith(":") else "")
        aligns.append(f' style="text-align:{side}"' if side else "")

    def tr(row: str, tag: str) -> str:
        cells = _cells(row)
        return "<tr>" + "".join(f"<{tag}{aligns[i] if i < len(aligns) else ''}>{inline(c, href)}</{tag}>"
                                for i, c in enumerate(cells)) + "</tr>"

    body = "".join(tr(r, "td") for r in rows[2:])
    return f"<table><thead>{tr(rows[0], 'th')}</thead><tbody>{body}</tbody></table>"


def _list(items: list[tuple[int, str]], href: Callable[[str], str]) -> str:
    """Items as (indent, text): deeper indents open a nested list inside the previous item."""
    out, stack = [], []  # stack: the indents of the open <ul>s
    for indent, text in items:
        if stack and indent > stack[-1]:
            out[-1] = out[-1].removesuffix("</li>")
            out.append("<ul>")
            stack.append(indent)
        while len(stack) > 1 and indent < stack[-1]:
            out.append("</ul></li>")
            stack.pop()
        if not stack:
            out.append("<ul>")
            stack.append(indent)
        out.append(f"<li>{inline(text, href)}</li>")
    out += ["</ul></li>"] * (len(stack) - 1) + ["</ul>"]
    return "".join(out)


def markdown_html(text: str, href: Callable[[str], str] = str) -> str:
    """The body HTML of ``text`` (the index's markdown subset); ``href`` maps each link target."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif heading := _HEADING.match(line):
            level = len(heading[1])
            out.append(f"<h{level}>{inline(heading[2], href)}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and _RULE.match(lines[i + 1].strip()):
            end = i + 2
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            out.append(_table(lines[i:end], href))
            i = end
        elif _ITEM.match(line):
            items = []
            while i < len(lines) and (item := _ITEM.match(lines[i])):
                items.append((len(item[1]), item[2]))
                i += 1
            out.append(_list(items, href))
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not (_HEADING.match(lines[i]) or _ITEM.match(lines[i])
                                                               or lines[i].lstrip().startswith("|")):
                para.append(lines[i].strip())
                i += 1
            if not para:  # a lone table-looking row without its rule: text
                para, i = [line.strip()], i + 1
            text = " ".join(para)
            if figure := _FIGURE.fullmatch(text):  # an image alone: a figure, captioned like a report's
                out.append(f"<figure>{inline(text, href)}<figcaption>{inline(figure[1], href)}</figcaption></figure>")
            else:
                out.append(f"<p>{inline(text, href)}</p>")
    return "\n".join(out)


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
