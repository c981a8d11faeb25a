"""The per-size report's parts: registered functions that each add one part of a report (``lm-forget analyze``,
and each ``n<N>-s<seed>/`` folder of a study).

A part lives in a module of its topic (``lm_forget/analysis/<topic>_parts.py``) and registers itself with
:func:`register_part`; :func:`registered_parts` imports every ``*_parts`` module of this package, so adding a
part touches one file. A part gets the :class:`PartContext` — the :class:`AnalysisResults` and the
:class:`~lm_forget.analysis.render.Rendered` report it adds its blocks, tables, files and figures to — and
returns the lines it adds to the report's Summary (none: an empty list). :func:`lm_forget.analysis.render.render`
writes the Findings, runs every part by ascending ``order``, then puts the Summary (data-problem warnings, then
the parts' lines in part order) after the Findings and the choices at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.report import Report
from lm_forget.analysis.results import AnalysisResults
from lm_forget.discovery import add_once, import_modules, origin

if TYPE_CHECKING:
    from lm_forget.analysis.render import Rendered


@dataclass
class PartContext:
    """What every part renders from.

    Attributes:
        res: the analysis (metrics, tests, features, matrix, control), computed already.
        rendered: the report being built: its blocks (``rendered.report``), tables, files and figures.
        features: the features input folder the report cites (None: no features).
        matrix: the cross-task matrix input folder (None: no matrix; the matrix part adds nothing).
    """

    res: AnalysisResults
    rendered: Rendered
    features: Path | None = None
    matrix: Path | None = None

    @property
    def report(self) -> Report:
        """The report's blocks, in order."""
        return self.rendered.report

    @property
    def options(self) -> AnalysisOptions:
        """The analysis settings."""
        return self.res.options


PartRenderer = Callable[[PartContext], list[str]]


@dataclass(frozen=True)
class Part:
    """A registered part: ``name``, ``order`` (its place in the report) and ``render`` (context -> summary lines)."""

    name: str
    order: int
    render: PartRenderer


PARTS: dict[str, Part] = {}


def register_part(name: str, *, order: int) -> Callable[[PartRenderer], PartRenderer]:
    """Register the decorated function as the per-size report's part ``name`` (parts run by ascending ``order``,
    and their Summary lines appear in that order)."""

    def decorate(render: PartRenderer) -> PartRenderer:
        add_once(PARTS, name, Part(name, order, render), what="report part", where=lambda p: origin(p.render))
        return render

    return decorate


def registered_parts() -> list[Part]:
    """Every part, in report order (imports each ``lm_forget.analysis.*_parts`` module, which registers its own)."""
    import_modules("lm_forget.analysis", suffix="_parts")
    return sorted(PARTS.values(), key=lambda p: (p.order, p.name))
