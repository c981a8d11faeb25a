"""What an HTML page of a study shows, read as files: the study's ``index.html`` and its per-size reports'
(tests/test_study_html.py; the method comparison's in tests/test_run_methods.py)."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote


class Page(HTMLParser):
    """What a page shows: tag counts, image sources, link targets, headings in order, title, text."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.images: list[str] = []
        self.links: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._open: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        attr = dict(attrs)
        if tag == "img":
            self.images.append(attr.get("src") or "")
        elif tag == "a":
            self.links.append(attr.get("href") or "")
        elif re.fullmatch(r"h[1-6]|title|figcaption", tag):
            self._open.append(tag)
            self.headings.append((tag, ""))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            tag, text = self.headings[-1]
            self.headings[-1] = (tag, text + data)
        if not (self._open and self._open[-1] in {"title", "figcaption"}):
            self.text.append(data)

    def flat_text(self) -> str:
        return re.sub(r"\s+", "", "".join(self.text))


def _local(target: str) -> bool:
    return not re.match(r"^(data:|[a-z][a-z0-9+.-]*://|#|mailto:)", target)


def _assert_resolves(page: Page, folder: Path) -> None:
    """Every local image and link target of ``page`` is a file under ``folder``."""
    for target in [*page.images, *page.links]:
        if _local(target):
            path = folder / unquote(target.split("#")[0])
            assert path.is_file(), f"{target} (in {folder}) is not a file"


def local(target: str) -> bool:
    """A target inside the study folder (not data:, a URL scheme, a fragment or mail)."""
    return not re.match(r"^(data:|[a-z][a-z0-9+.-]*://|#|mailto:)", target)


def assert_resolves(page: Page, folder: Path) -> None:
    """Every local image and link target of ``page`` is a file under ``folder``."""
    for target in [*page.images, *page.links]:
        if local(target):
            path = folder / unquote(target.split("#")[0])
            assert path.is_file(), f"{target} (in {folder}) is not a file"


def study_figures(folder: Path, reports: list[Path]) -> set[str]:
    """The PNG figures the study wrote outside its per-size reports (those show their own)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*.png")
            if not any(r in p.parents for r in reports)}


def check_study_pages(out: Path) -> list[Path]:
    """The study index's HTML beside its ``index.md`` (``out``): titled, Findings first, every heading of the
    markdown in order, every target a file, one <img> per study figure, per-size reports linked as HTML; each
    report's HTML with one embedded image per PNG it wrote. Returns the report folders."""
    markdown = (out / "index.md").read_text(encoding="utf-8")
    page = Page((out / "index.html").read_text(encoding="utf-8"))
    title = re.search(r"^# (.*)$", markdown, re.M)
    assert title and page.headings[0] == ("title", title[1]) and page.headings[1] == ("h1", title[1])
    assert [h for h in page.headings if h[0] == "h2"][0] == ("h2", "Findings")
    assert [text for tag, text in page.headings if tag[0] == "h"] == [  # every heading of index.md, in order
        m[1].replace("`", "") for m in re.finditer(r"^#{1,6} (.*)$", markdown, re.M)]
    assert_resolves(page, out)
    reports = [out / Path(link).parent for link in page.links if link.endswith("/index.html")]
    assert reports and not [link for link in page.links if link.endswith(".md")]
    assert sorted(page.images) == sorted(study_figures(out, reports))  # every study figure shown, no other
    for report in reports:  # the per-size reports: figures embedded, one per PNG written
        shown = Page((report / "index.html").read_text(encoding="utf-8"))
        assert_resolves(shown, report)
        assert all(src.startswith("data:image/png;base64,") for src in shown.images)
        assert len(shown.images) == len(list((report / "figures").glob("*.png"))) > 0
    return reports
