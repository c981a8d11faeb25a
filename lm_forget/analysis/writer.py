"""Writing a report folder: a :class:`~lm_forget.analysis.render.Rendered` report saved whole or not at all.

:func:`write_report` builds the folder in a temporary folder beside ``out`` and renames it into place
(:func:`lm_forget.io.atomic_dir`): an interrupted or failed write leaves the previous report (or
nothing), never half of one. :func:`save_rendered` writes into a folder as it is (the temporary one).
"""

from __future__ import annotations

import logging
from pathlib import Path

from lm_forget.analysis import plots
from lm_forget.analysis.render import Rendered
from lm_forget.analysis.report import markdown_table

log = logging.getLogger(__name__)


def check_out(out: Path) -> Path:
    """Get ``out`` ready to be replaced by a report: undo a cut-off replace, refuse a file or a folder of other
    things (the report replaces the whole folder, so they would be deleted)."""
    from lm_forget.io import recover_dir
    from lm_forget.outdirs import refuse_foreign

    out = Path(out)
    recover_dir(out)
    refuse_foreign(out, lambda folder: (folder / "index.md").is_file(), flag="--out",
                   what="an lm-forget report folder", marker="index.md",
                   why="the report replaces the whole folder", hidden=True)
    return out


def save_rendered(rendered: Rendered, out: Path) -> Path:
    """Write the tables, text files, figures, ``index.md`` and ``index.html`` of ``rendered`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for stem, frame in rendered.tables.items():
        frame.to_csv(out / f"{stem}.csv", index=False)
        frame.to_json(out / f"{stem}.json", orient="records", indent=2)
        (out / f"{stem}.md").write_text(markdown_table(frame) + "\n", encoding="utf-8")
    for name, text in rendered.files.items():
        (out / name).write_text(text, encoding="utf-8")
    for stem, fig in rendered.figures.items():
        plots.save(fig, out / stem, rendered.formats)
    from lm_forget.analysis.index_html import html_page, inline_image

    markdown = rendered.markdown()
    (out / "index.md").write_text(markdown, encoding="utf-8")
    (out / "index.html").write_text(html_page(markdown, src=inline_image(out)), encoding="utf-8")
    log.info("report written to %s", out / "index.md")
    return out


def write_report(rendered: Rendered, out: Path) -> Path:
    """Replace the report folder ``out`` with ``rendered``, atomically; a full disk is a readable error."""
    from lm_forget.io import atomic_dir, disk_full_error

    out = check_out(out)
    try:
        with atomic_dir(out, keep_on_error=False) as tmp:
            save_rendered(rendered, tmp)
    except OSError as exc:
        error = disk_full_error(exc, out, "free space there or pass another --out; the previous report is kept")
        if error is None:
            raise
        raise error from exc
    finally:
        close_figures(rendered)
    return out


def close_figures(rendered: Rendered) -> None:
    """Close the figures of ``rendered`` (saved or not)."""
    plt = plots._plt()
    for fig in rendered.figures.values():
        plt.close(fig)
