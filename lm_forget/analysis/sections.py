"""The study report's sections: registered builders that turn a study's outputs into tables and markdown in
memory, and :func:`write_sections`, the one place that writes them.

A section lives in the module of its study feature (``lm_forget/analysis/<feature>_report.py``) and registers
itself with :func:`register_section`; :func:`registered_sections` imports every ``*_report`` module of this
package, so adding a section touches one file. A section's builder gets the :class:`StudyContext` and returns a
:class:`SectionOutput` — its title, markdown body, tables (pandas DataFrames) and the rows the study's findings
read — or None when the study has nothing for it. Builders write only their figures (into ``ctx.folder(...)``);
tables are written here, once, and nothing is read back to build another section.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_forget.analysis.options import AnalysisOptions


@dataclass
class SectionOutput:
    """One section, in memory.

    Attributes:
        title: its markdown heading (``## Relearning``).
        body: the markdown lines under the heading (text, tables, figure links relative to the index).
        tables: file stem (may hold a subfolder, ``npo/forget_set``) -> DataFrame, written as CSV under the
            section's folder.
        findings: what the study's findings read from this section (``protocol``, ``orders``, ``relearn``,
            ``deep``: the keyword arguments of :func:`lm_forget.analysis.findings_build.study_findings`).
    """

    title: str
    body: list[str]
    tables: dict[str, Any] = field(default_factory=dict)
    findings: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudyContext:
    """What every section builds from.

    Attributes:
        plan: the study's plan (its steps, their cells and outputs).
        options: the analysis settings (one ``confidence_level``, ``margin``, ``alpha`` for every section).
        out: the folder the study report is built in (the index links relative to it).
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


@dataclass(frozen=True)
class Section:
    """A registered section: ``name`` (its markdown file), ``folder`` (where its tables and figures go),
    ``order`` (its place in the index) and ``build``."""

    name: str
    folder: str
    order: int
    build: Callable[[StudyContext], SectionOutput | None]


SECTIONS: dict[str, Section] = {}


def register_section(name: str, *, order: int, folder: str | None = None
                     ) -> Callable[[Callable[[StudyContext], SectionOutput | None]],
                                   Callable[[StudyContext], SectionOutput | None]]:
    """Register the decorated builder as the study report's section ``name`` (its tables go to ``folder``,
    default ``name``; sections render by ascending ``order``)."""

    def decorate(build: Callable[[StudyContext], SectionOutput | None]) -> Callable[[StudyContext],
                                                                                   SectionOutput | None]:
        known = SECTIONS.get(name)
        if known is not None and known.build.__qualname__ != build.__qualname__:
            raise ValueError(f"report section {name!r} is registered twice ({known.build.__module__} and "
                             f"{build.__module__}); give one of them another name")
        SECTIONS[name] = Section(name, folder or name, order, build)
        return build

    return decorate


def registered_sections() -> list[Section]:
    """Every section, in index order (imports each ``lm_forget.analysis.*_report`` module, which registers its own)."""
    import lm_forget.analysis as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name.endswith("_report"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    return sorted(SECTIONS.values(), key=lambda s: (s.order, s.name))


@dataclass
class BuiltSections:
    """The sections of one study report: the index's lines, every table by its path under the report
    (``protocol/forget_set``) and the findings' inputs."""

    lines: list[str] = field(default_factory=list)
    tables: dict[str, Any] = field(default_factory=dict)
    findings: dict[str, Any] = field(default_factory=dict)


def write_sections(ctx: StudyContext) -> BuiltSections:
    """Build every registered section for ``ctx`` and write its tables (CSV) and its markdown file
    (``<folder>/<name>.md``) under ``ctx.out``."""
    built = BuiltSections()
    for section in registered_sections():
        output = section.build(ctx)
        if output is None:
            continue
        folder = ctx.folder(section.folder)
        for stem, frame in output.tables.items():
            path = folder / f"{stem}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
            built.tables[f"{section.folder}/{stem}"] = frame
        text = [output.title, "", *output.body]
        if output.tables:
            names = ", ".join(f"`{section.folder}/{stem}.csv`" for stem in output.tables)
            text += ["", f"Tables as CSV: {names}.", ""]
        (folder / f"{section.name}.md").write_text("\n".join(text) + "\n", encoding="utf-8")
        built.lines += ["", *text]
        built.findings.update(output.findings)
    return built
