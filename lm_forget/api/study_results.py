"""``StudyResults``: the numbers of one analysis or of a whole study, in memory, as pandas tables.

Built in memory — from one analysis (:func:`lm_forget.analyze`), or for a whole study by its ``analyze`` step
(:mod:`lm_forget.run.steps.analyze`), which renders and writes the study report from it
(:mod:`lm_forget.analysis.study_index`) — or read from what an analysis wrote (a report folder, a study's
``analyze`` output, or a study's run folder: :meth:`StudyResults.read`).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_forget.analysis.findings import FINDINGS_FILE, Findings
from lm_forget.errors import DataError
from lm_forget.formats import DONE_FILE, PLAN_FILE, REPORT_INDEX_FILE

if TYPE_CHECKING:
    import pandas as pd

    from lm_forget.analysis.results import AnalysisResults
    from lm_forget.analysis.sections import SectionData

log = logging.getLogger(__name__)

#: the report tables that have a field of their own (every other table of a report goes into ``tables``)
MAIN_TABLES = {"metrics": "metrics", "tests_task_level": "tests", "tests_example_level": "example_tests"}
SKIPPED_TABLES = {"docs"}  # per-doc rows: large; in memory they are ``analysis.joined``


@dataclass
class StudyResults:
    """What an analysis found, as tables.

    Attributes:
        metrics: one row per (task, split): accuracies of every phase, forget gap / drop / ratios, each with its
            interval (``<column>_lo`` / ``<column>_hi``), the behaviour and the at-chance verdict (the report's
            ``metrics.csv``; pooled analyses add a ``seed`` column).
        tests: the task-level predictor tests (``tests_task_level.csv``); empty when no predictor was tested.
        example_tests: the example-level tests within each task (``tests_example_level.csv``); may be empty.
        findings: the report's (or the study's) :class:`~lm_forget.analysis.findings.Findings`, one per claim.
        options: the analysis settings (``AnalysisOptions.to_dict()``).
        tables: every other table by name: the matrix and control tables of a report; for a study the
            study-level tables by their path in the analyze output (``protocol/forget_set``, ``relearn/relearn``,
            ``seeds_summary``, ...).
        reports: a study's per-report results by folder name (``n64-s0``, ``n64-pooled``); empty for one analysis.
        headline: the report ``metrics`` / ``tests`` come from (a study's pooled report, else its first one).
        source: the folder the results were read from (None: computed in memory).
        analysis: the in-memory :class:`~lm_forget.analysis.results.AnalysisResults` (None when read from disk).
        sections: a study's report sections by name, in memory (:class:`~lm_forget.analysis.sections.SectionData`:
            their tables, also in ``tables``, figures and findings inputs); empty when read from disk.
        title, description: a study's name and its one-line summary (model, method, seeds, sizes).
    """

    metrics: pd.DataFrame
    tests: pd.DataFrame
    example_tests: pd.DataFrame
    findings: Findings
    options: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    reports: dict[str, StudyResults] = field(default_factory=dict, repr=False)
    headline: str | None = None
    source: Path | None = None
    analysis: AnalysisResults | None = field(default=None, repr=False)
    inputs: dict[str, Path] = field(default_factory=dict, repr=False)  #: features / matrix folders (the report cites)
    sections: dict[str, SectionData] = field(default_factory=dict, repr=False)
    title: str = ""
    description: str = ""

    @property
    def held_out(self) -> pd.DataFrame:
        """``metrics`` on the analysis split only (``options["split"]``, the held-out docs by default)."""
        split = self.options.get("split", "test")
        return self.metrics[self.metrics["split"] == split].reset_index(drop=True)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_analysis(cls, res: AnalysisResults, *, features: Path | None = None,
                      matrix: Path | None = None) -> StudyResults:
        """From an in-memory analysis (:func:`lm_forget.analysis.api.compute`); nothing is rendered.
        ``features`` / ``matrix``: the folders ``res`` was computed with (their report sections need them)."""
        import pandas as pd

        from lm_forget.analysis.findings_build import report_findings

        tables = {name: frame for name, frame in (
            ("matrix_long", res.matrix_long), ("matrix_forget_ratio", res.matrix_ratios),
            ("control_flip_by_decile", res.control_deciles), ("control_excess", res.control_excess))
            if frame is not None}
        return cls(metrics=res.metrics_all, tests=res.tests if res.tests is not None else pd.DataFrame(),
                   example_tests=res.example_tests if res.example_tests is not None else pd.DataFrame(),
                   findings=report_findings(res), options=json.loads(json.dumps(res.options.to_dict())),
                   tables=tables, analysis=res,
                   inputs={k: Path(v) for k, v in (("features", features), ("matrix", matrix)) if v is not None})

    @classmethod
    def read(cls, path: str | Path) -> StudyResults:
        """From a report folder (``lm-forget analyze --out``), a study's analyze output, or a study's run folder."""
        path = Path(path)
        if (path / PLAN_FILE).is_file():  # a run folder: its analyze step's output
            path = _analyze_output(path)
        if (path / "metrics.csv").is_file():
            return _read_report(path)
        reports = {p.name: _read_report(p) for p in _report_folders(path)}
        if not reports:
            raise DataError(f"{path} holds no analysis report (no metrics.csv in it or its subfolders): pass a "
                            "report folder, a study's analyze output or a study's run folder.")
        headline = _headline(path, list(reports))
        first = reports[headline]
        findings = Findings.read(path) if (path / FINDINGS_FILE).is_file() else first.findings
        return cls(metrics=first.metrics, tests=first.tests, example_tests=first.example_tests, findings=findings,
                   options=first.options, tables=_read_tables(path, skip={path / name for name in reports}),
                   reports=reports, headline=headline, source=path)

    # ------------------------------------------------------------------ output
    def to_markdown(self) -> str:
        """The report as markdown: ``index.md`` (figures are linked, not embedded; :meth:`write` saves them)."""
        if self.source is not None:
            return (self.source / REPORT_INDEX_FILE).read_text(encoding="utf-8")
        if self.reports:
            from lm_forget.analysis.study_index import render_study

            return render_study(self)
        from lm_forget.analysis.writer import close_figures

        rendered = self.render()
        try:
            return rendered.markdown()
        finally:
            close_figures(rendered)

    def write(self, path: str | Path) -> Path:
        """Write the report folder (``index.md``, ``index.html``, tables, figures) to ``path``, atomically;
        results read from disk are copied whole. Returns ``path``."""
        from lm_forget.analysis.writer import write_report

        path = Path(path)
        if self.source is None:
            if self.reports:  # only a study's analyze step builds one, and writes it where it is built
                raise DataError("a study's results are written by its analyze step; write them once written "
                                "(StudyResults.read(run_dir).write(path))")
            return write_report(self.render(), path)
        from lm_forget.analysis.writer import check_out
        from lm_forget.io import atomic_dir

        check_out(path)
        if path.resolve() == self.source.resolve():
            return path
        with atomic_dir(path, keep_on_error=False) as tmp:
            shutil.copytree(self.source, tmp, dirs_exist_ok=True)
        log.info("report copied to %s", path / REPORT_INDEX_FILE)
        return path

    def render(self) -> Any:
        """This analysis's report, rendered in memory (:class:`~lm_forget.analysis.render.Rendered`; nothing
        written: close its figures with :func:`lm_forget.analysis.writer.close_figures`)."""
        from lm_forget.analysis.render import render

        if self.analysis is None:
            raise DataError("these results carry no analysis to render")
        return render(self.analysis, **self.inputs)


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(path, keep_default_na=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _read_report(folder: Path) -> StudyResults:
    """One report folder: its tables, findings and options."""
    import pandas as pd

    if not (folder / "metrics.csv").is_file():
        raise DataError(f"{folder}: no metrics.csv; is this an lm-forget report folder?")
    main = {attr: _read_csv(folder / f"{stem}.csv") if (folder / f"{stem}.csv").is_file() else pd.DataFrame()
            for stem, attr in MAIN_TABLES.items()}
    notes = main["metrics"].get("ratio_note")  # an empty note is NaN in the CSV
    main["metrics"]["ratio_note"] = notes.astype(object).where(notes.notna(), "") if notes is not None else ""
    options = json.loads((folder / "options.json").read_text(encoding="utf-8")) \
        if (folder / "options.json").is_file() else {}
    findings = Findings.read(folder) if (folder / FINDINGS_FILE).is_file() else Findings("report")
    tables = {p.stem: _read_csv(p) for p in sorted(folder.glob("*.csv"))
              if p.stem not in MAIN_TABLES and p.stem not in SKIPPED_TABLES}
    return StudyResults(findings=findings, options=options, tables=tables, source=folder, **main)


def _report_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "metrics.csv").is_file()) if root.is_dir() else []


def _read_tables(root: Path, skip: set[Path]) -> dict[str, pd.DataFrame]:
    """Every CSV under ``root`` outside the ``skip`` folders, by its relative path without ``.csv``."""
    out = {}
    for path in sorted(root.rglob("*.csv")):
        if any(folder in path.parents for folder in skip):
            continue
        out[path.relative_to(root).with_suffix("").as_posix()] = _read_csv(path)
    return out


def _headline(root: Path, names: list[str]) -> str:
    """The study's headline report: the one its analyze step recorded, else the index's first link."""
    import re

    done = root.parent / DONE_FILE
    if done.is_file():
        report = Path(json.loads(done.read_text(encoding="utf-8")).get("report") or "")
        if report.parent.name in names:
            return report.parent.name
    index = root / REPORT_INDEX_FILE
    if index.is_file():
        for link in re.findall(r"\]\(([^)/]+)/index\.md\)", index.read_text(encoding="utf-8")):
            if link in names:
                return link
    pooled = [n for n in names if n.endswith("-pooled")]
    return (pooled or names)[0]


def _analyze_output(run_dir: Path) -> Path:
    """The output folder of the analyze step of the study in ``run_dir`` (from its ``plan.json``)."""
    rows = json.loads((run_dir / PLAN_FILE).read_text(encoding="utf-8"))
    steps = [r for r in rows if r.get("kind") == "analyze"]
    if not steps:
        raise DataError(f"{run_dir}: the study has no analyze step (its config leaves the analysis out).")
    from lm_forget.run.graph import OUTPUT

    output = run_dir / steps[0]["dir"] / OUTPUT
    if not (run_dir / steps[0]["dir"] / DONE_FILE).is_file() or not output.is_dir():
        raise DataError(f"{run_dir}: the study's analyze step has not finished; run the study first "
                        "(Study(...).run() or `lm-forget run`).")
    return output
