"""The study report, from one in-memory :class:`~lm_forget.api.study_results.StudyResults`: :func:`render_study`
gives the index's markdown (findings first, the per-size reports, the across-seed summary, then every registered
section rendered from its tables) and :func:`write_study` writes the whole report folder: each per-size report,
each section's tables (CSV) and markdown, the findings, ``index.md`` and the same page as ``index.html``
(:mod:`lm_forget.analysis.index_html`: one markdown-to-HTML renderer for every page of a report).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_forget.analysis.findings import FINDINGS_FILE
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.sections import records, registered_sections

if TYPE_CHECKING:
    from lm_forget.api.study_results import StudyResults

log = logging.getLogger(__name__)

#: the study-level tables that are not a section's: which report is which, and the across-seed summary
REPORTS_TABLE, SEEDS_TABLE = "reports", "seeds_summary"


def report_link(row: dict[str, Any]) -> str:
    """The index's line for one row of the ``reports`` table."""
    what = f"{row['method'] + ', ' if row.get('method') else ''}forget-set size {row['n']}"
    which = "pooled" if row["pooled"] else f"seed {row['replicate']}"
    return f"- [{what}, {which}]({row['label']}/index.md)"


def render_study(results: StudyResults) -> str:
    """The study index's markdown, from ``results`` alone."""
    options = AnalysisOptions(**results.options)
    rows = records(results.tables[REPORTS_TABLE])
    pooled, replicates = [r for r in rows if r["pooled"]], [r for r in rows if not r["pooled"]]
    lines = [f"# {results.title}", "", results.description, "", *results.findings.markdown(),
             f"Per-size reports and tables below; these findings as JSON: `{FINDINGS_FILE}`.", ""]
    if pooled:
        lines += ["## Pooled over seeds (headline)", "",
                  "Task outcomes averaged over every (fine-tune seed, forget seed) replicate; the task-level "
                  "tests' intervals resample tasks, then fine-tune seeds, then forget seeds, then docs. "
                  "Predictors, the example level and the matrix come from the first replicate; the "
                  "per-replicate reports below are the sensitivity analysis.", "",
                  *(report_link(r) for r in pooled), "", "## Per replicate", ""]
    lines += [report_link(r) for r in replicates]
    if SEEDS_TABLE in results.tables:
        lines += ["", "## Across seeds", "", results.tables[SEEDS_TABLE].to_markdown(index=False), ""]
    for section in registered_sections():
        if section.name in results.sections:
            lines += ["", *section.markdown(results.sections[section.name], options)]
    return "\n".join(lines) + "\n"


def write_study(results: StudyResults, folder: Path) -> None:
    """Write the study report of ``results`` into ``folder`` (the analyze step's temporary output; section
    figures are already there, saved by their builders)."""
    from lm_forget.analysis.index_html import write_index_html
    from lm_forget.analysis.writer import close_figures, save_rendered

    options = AnalysisOptions(**results.options)
    for label, report in results.reports.items():
        rendered = report.render()
        try:
            save_rendered(rendered, folder / label)
        finally:
            close_figures(rendered)
    for name, frame in results.tables.items():  # every table once, by its path under the report
        path = folder / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
    for section in registered_sections():
        if section.name in results.sections:
            text = section.markdown(results.sections[section.name], options)
            (folder / section.folder / f"{section.name}.md").write_text("\n".join(text) + "\n", encoding="utf-8")
    (folder / FINDINGS_FILE).write_text(results.findings.to_json(), encoding="utf-8")
    text = render_study(results)
    (folder / "index.md").write_text(text, encoding="utf-8")
    write_index_html(folder, text)
    log.info("study report written to %s", folder / "index.md")
