"""The study report's sections: registered pairs of a builder (a study's outputs -> tables, in memory) and a
renderer (those tables -> markdown).

A section lives in the module of its study feature (``lm_forget/analysis/<feature>_report.py``) and registers
itself with :func:`register_section`; :func:`registered_sections` imports every ``*_report`` module of this
package, so adding a section touches one file. A builder gets the :class:`StudyContext` and returns the section's
:class:`SectionData` — its tables (pandas DataFrames), figures and the rows the study's findings read — or None
when the study has nothing for it; :func:`build_sections` collects them into the study's
:class:`~lm_forget.api.study_results.StudyResults`. A renderer gets a section's data and the analysis options
and returns its markdown; :mod:`lm_forget.analysis.study_index` renders and writes the whole index from the
``StudyResults``, so nothing is written to disk and read back to make another section.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_forget.analysis.options import AnalysisOptions
from lm_forget.discovery import add_once, import_modules, origin


@dataclass
class SectionData:
    """One section's results, in memory: what its renderer reads.

    Attributes:
        tables: file stem (may hold a subfolder, ``npo/forget_set``) -> DataFrame, written as CSV under the
            section's folder and kept in ``StudyResults.tables`` as ``<folder>/<stem>``.
        figures: name -> image path relative to the study index (the builder saved the image there).
        findings: what the study's findings read from this section (``protocol``, ``orders``, ``relearn``,
            ``deep``: the keyword arguments of :func:`lm_forget.analysis.findings_build.study_findings`).
    """

    tables: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    findings: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudyContext:
    """What every section builds from.

    Attributes:
        plan: the study's plan (its steps, their cells and outputs).
        options: the analysis settings (one ``confidence_level``, ``margin``, ``alpha`` for every section).
        out: the folder the study report is built in (figures are saved under it, linked relative to it).
        headline: per (method id or None, forget-set size): the in-memory analysis the study's headline numbers
            come from (pooled over replicates where there are several, else the first replicate).
    """

    plan: Any
    options: AnalysisOptions
    out: Path
    headline: dict[tuple[str | None, int | None], Any] = field(default_factory=dict)

    @property
    def config(self) -> Any:
        return self.plan.config

    def folder(self, *parts: str) -> Path:
        """A folder under the report (created), for a section's figures."""
        path = self.out.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def figure_path(self, path: Path) -> str:
        """``path`` (a figure saved under :attr:`out`) as the index links it."""
        return path.relative_to(self.out).as_posix()


Builder = Callable[[StudyContext], SectionData | None]
Renderer = Callable[[SectionData, AnalysisOptions], list[str]]


@dataclass(frozen=True)
class Section:
    """A registered section: ``name`` (its markdown file), ``title`` (its heading), ``folder`` (where its tables
    and figures go), ``order`` (its place in the index), ``build`` and ``render``."""

    name: str
    title: str
    folder: str
    order: int
    build: Builder
    render: Renderer

    def markdown(self, data: SectionData, options: AnalysisOptions) -> list[str]:
        """The section's text: heading, rendered body, and where its tables are as CSV."""
        text = [f"## {self.title}", "", *self.render(data, options)]
        if data.tables:
            names = ", ".join(f"`{self.folder}/{stem}.csv`" for stem in data.tables)
            text += ["", f"Tables as CSV: {names}.", ""]
        return text


SECTIONS: dict[str, Section] = {}


def register_section(name: str, *, order: int, title: str, render: Renderer, folder: str | None = None
                     ) -> Callable[[Builder], Builder]:
    """Register the decorated builder as the study report's section ``name``, rendered by ``render`` under the
    heading ``title`` (its tables go to ``folder``, default ``name``; sections appear by ascending ``order``)."""

    def decorate(build: Builder) -> Builder:
        add_once(SECTIONS, name, Section(name, title, folder or name, order, build, render), what="report section",
                 where=lambda s: origin(s.build))
        return build

    return decorate


def registered_sections() -> list[Section]:
    """Every section, in index order (imports each ``lm_forget.analysis.*_report`` module, which registers its own)."""
    import_modules("lm_forget.analysis", suffix="_report")
    return sorted(SECTIONS.values(), key=lambda s: (s.order, s.name))


def build_sections(ctx: StudyContext) -> dict[str, SectionData]:
    """Every registered section's data for ``ctx``, in index order (sections with nothing to show left out)."""
    built = {}
    for section in registered_sections():
        data = section.build(ctx)
        if data is not None:
            built[section.name] = data
    return built


def table_frame(rows: Sequence[dict[str, Any]]) -> Any:
    """``rows`` as a DataFrame; a column of integers with gaps stays integer (pandas ``Int64``), not float, so
    the CSV and the rendered table show ``64``, not ``64.0``."""
    import pandas as pd

    frame = pd.DataFrame(list(rows))
    for column in frame.columns:
        values = [r[column] for r in rows if r.get(column) is not None]
        if len(values) < len(rows) and values and all(type(v) is int for v in values):
            frame[column] = frame[column].astype("Int64")
    return frame


def records(frame: Any) -> list[dict[str, Any]]:
    """The rows of a section table as dicts, as a renderer reads them: missing cells (NaN, None, NA) left out,
    so ``row.get(column, default)`` sees the default; numbers as Python numbers."""
    import pandas as pd

    def missing(value: Any) -> bool:
        return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))

    return [{k: v.item() if hasattr(v, "item") else v for k, v in row.items() if not missing(v)}
            for row in frame.to_dict("records")]
