"""Predictor registry: each predictor is a small registered unit (one file, one function).

A predictor function takes the :class:`Context` of one analysis and returns zero or more
:class:`PredictorValues` — task-level (one value per task, tested against the forget outcome across
tasks) or example-level (one value per doc, tested against "forgotten" within each task).
Adding a predictor = one module with a ``@register("name")`` function, imported in ``PREDICTOR_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lm_forget.analysis.options import AnalysisOptions
from lm_forget.errors import ConfigError

PREDICTOR_MODULES = (
    "lm_forget.analysis.confidence",
    "lm_forget.analysis.difficulty",
    "lm_forget.analysis.variance",
)


@dataclass
class Context:
    """What predictors read: the joined per-doc frame, the task metrics on ``options.split``, features."""

    joined: Any  # pandas DataFrame, one row per doc (see join.join_phases)
    metrics: Any  # pandas DataFrame, one row per task on options.split
    options: AnalysisOptions
    feature_sets: list[dict] = field(default_factory=list)  # parsed features.json files


@dataclass
class PredictorValues:
    """Values of one predictor. ``values``: task -> float (level "task") or a Series aligned with
    ``Context.joined`` (level "example")."""

    name: str
    level: str
    description: str
    values: Any
    expected: str = ""  # direction the paper reports vs forgetting, for the summary


PredictorFn = Callable[[Context], list[PredictorValues]]
_REGISTRY: dict[str, PredictorFn] = {}


def register(name: str) -> Callable[[PredictorFn], PredictorFn]:
    """Register a predictor function under ``name``."""

    def deco(fn: PredictorFn) -> PredictorFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ConfigError(f"predictor {name!r} is registered twice")
        _REGISTRY[name] = fn
        return fn

    return deco


def predictors() -> dict[str, PredictorFn]:
    """All registered predictors (importing the built-in modules first)."""
    for module in PREDICTOR_MODULES:
        importlib.import_module(module)
    return dict(_REGISTRY)


def compute(ctx: Context, names: list[str] | None = None) -> list[PredictorValues]:
    """Run the named predictors (all when None) on ``ctx``."""
    available = predictors()
    unknown = sorted(set(names or []) - set(available))
    if unknown:
        raise ConfigError(f"unknown predictor(s) {', '.join(unknown)}; available: {', '.join(sorted(available))}")
    out: list[PredictorValues] = []
    for name in names or sorted(available):
        out.extend(available[name](ctx))
    return out
