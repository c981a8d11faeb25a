"""The study's ``index.html`` (lm_forget/analysis/index_html.py) and the per-size reports' ``index.html``.

Three layers: the index's markdown rendered right (markdown-it-py, plus our link and figure rules); the quick
demo study's pages checked as files (every ``<img src>`` and ``<a href>`` resolves, one
``<img>`` per figure the study wrote, Findings first); and the same pages in a real headless Chromium: every image
loaded and shown, their number equal to the figures on disk, and a screenshot that is not blank.

Chromium comes from the system packages (Debian: ``apt-get install chromium``), which CI's pip-only set-up does
not have: without it the browser test skips, under CI=true too, with the reason (docs/testing.md); the file
checks above it run everywhere. ``LM_FORGET_REQUIRE_BROWSER=1`` makes a missing browser a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pages import Page, check_study_pages, study_figures

from lm_forget.analysis.index_html import markdown_html, write_index_html

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1200, 3000)


# --- the markdown subset -------------------------------------------------------------------------------------

SAMPLE = """# study `x`

Model: `a<b>`; label mode: random. A **bold [link](r/index.md)** and *emphasis*; 2 * 3 stays text.

## Findings

- **claim one**: text with \\*stars\\*
    - detail a
    - detail b
- claim two

| left | right | centre | plain |
|:-----|------:|:------:|-------|
| a \\| b | 1.5 | `c` | |

![a figure](fig/a.png)

Table as CSV: `t.csv`.
"""


def test_index_markdown_renders(tmp_path):
    body = markdown_html(SAMPLE, href=lambda t: t.upper())
    flat = re.sub(r"\s*\n\s*", "", body)  # markdown-it puts block tags on their own lines
    assert "<h1>study <code>x</code></h1>" in flat
    assert "<code>a&lt;b&gt;</code>" in flat and '<strong>bold <a href="R/INDEX.MD">link</a></strong>' in flat
    assert "<em>emphasis</em>" in flat and "2 * 3 stays text" in flat
    assert ("<ul><li><strong>claim one</strong>: text with *stars*<ul><li>detail a</li><li>detail b</li></ul></li>"
            "<li>claim two</li></ul>") in flat
    assert ('<th style="text-align:left">left</th><th style="text-align:right">right</th>'
            '<th style="text-align:center">centre</th><th>plain</th>') in flat
    assert '<td style="text-align:left">a | b</td>' in flat and "<td></td>" in flat
    assert '<figure><img src="fig/a.png" alt="a figure" /><figcaption>a figure</figcaption></figure>' in flat
    assert "<p><img" not in flat  # every lone image is a figure
    assert markdown_html("a <script>x</script>") == "<p>a &lt;script&gt;x&lt;/script&gt;</p>\n"  # raw HTML: text

    # the page: a report's index.md link becomes its index.html only where that file exists
    (tmp_path / "r").mkdir()
    page = Page(write_index_html(tmp_path, SAMPLE + "\n- [s](s/index.md)\n").read_text())
    assert page.links == ["r/index.md", "s/index.md"]
    (tmp_path / "r" / "index.html").write_text("<html></html>")
    page = Page(write_index_html(tmp_path, SAMPLE).read_text())
    assert page.links == ["r/index.html"] and page.headings[0] == ("title", "study `x`")


# --- the quick demo study's pages ----------------------------------------------------------------------------


def _study(quick_demo) -> Path:
    (index,) = quick_demo.out.glob("analyze/*/output/index.md")
    return index.parent


@pytest.mark.e2e
@pytest.mark.xdist_group("demo_study")
def test_study_index_html_as_files(quick_demo):
    out = _study(quick_demo)
    check_study_pages(out)


@pytest.fixture(scope="session")
def browser() -> str | None:
    """The headless browser's command (asked for before the study, so a skip costs nothing)."""
    found = os.environ.get("LM_FORGET_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if found:
        return found
    reason = (f"no headless browser ({', '.join(BROWSERS)}; or LM_FORGET_CHROMIUM): install the system package "
              "(Debian: apt-get install chromium). CI installs only through pip, so this test skips there; the "
              "file checks (test_study_index_html_as_files) still run")
    if os.environ.get("LM_FORGET_REQUIRE_BROWSER"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)
    return None


#: set on <body> once the page has loaded: images, those decoded (natural width > 0), those laid out with a
#: visible size, and the sources of the broken ones
PROBE = """<script>addEventListener('load', () => { const all = [...document.images], b = document.body.dataset;
const ok = all.filter(i => i.complete && i.naturalWidth > 0);
b.images = all.length; b.loaded = ok.length; b.broken = all.filter(i => !ok.includes(i)).map(i => i.src).join(' ');
b.shown = all.filter(i => { const r = i.getBoundingClientRect(); return r.width > 0 && r.height > 0; }).length;
});</script></body>"""


def _chromium(binary: str, profile: Path, *args: str) -> str:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--hide-scrollbars", f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _seen(binary: str, page: Path, profile: Path) -> dict[str, str]:
    """The probe's numbers for ``page`` as Chromium loaded it (a probed copy beside it, so paths resolve)."""
    probed = page.with_name(".probe-" + page.name)
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    dom = _chromium(binary, profile, "--dump-dom", probed.as_uri())
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:2000]
    return dict(re.findall(r'data-(\w+)="([^"]*)"', body[1]))


@pytest.mark.e2e
@pytest.mark.xdist_group("demo_study")
def test_study_index_html_in_chromium(browser, quick_demo, tmp_path):
    binary = str(browser)
    out = shutil.copytree(_study(quick_demo), tmp_path / "study")  # the probes go beside the copy's pages
    profile = tmp_path / "profile"
    reports = [p.parent for p in out.glob("*/index.html")]
    figures = study_figures(out, reports)
    for page, expected in [(out / "index.html", len(figures)),
                           *((r / "index.html", len(list((r / "figures").glob("*.png")))) for r in reports)]:
        seen = _seen(binary, page, profile)
        assert seen.get("broken") == "", f"{page}: broken images {seen}"
        assert seen["images"] == seen["loaded"] == seen["shown"] == str(expected), f"{page}: {seen}"

    bad = out / "broken.html"  # the probe sees a missing figure (so the numbers above can fail)
    bad.write_text('<html><body><img src="protocol/missing.png" alt="x"></body></html>', encoding="utf-8")
    assert _seen(binary, bad, profile) == {"images": "1", "loaded": "0", "shown": "1",
                                           "broken": (out / "protocol" / "missing.png").as_uri()}

    shot = tmp_path / "index.png"
    _chromium(binary, profile, f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}",
              (out / "index.html").as_uri())
    from PIL import Image  # matplotlib's own dependency

    with Image.open(shot) as image:
        assert image.size == WINDOW
        gray = image.convert("L")
        ink = sum(gray.histogram()[:200]) / (WINDOW[0] * WINDOW[1])  # share of pixels well off white
        colours = len(image.convert("RGB").getcolors(maxcolors=1 << 20) or [])
    assert ink > 0.01 and colours > 50, f"blank-looking screenshot: {ink:.4f} dark share, {colours} colours"
