"""The study features' registry: each feature's plan steps and config checks, found by the plan and the checks.

A study feature (forget-set evaluations, utility tasks, relearning, how deep...) lives in its own module
``lm_forget/run/<feature>_steps.py`` and registers itself with :func:`register_feature`; :func:`registered_features`
imports every ``*_steps`` module of this package, so :func:`lm_forget.run.graph.build_plan` and
:func:`lm_forget.run.checks.validate_config` call every feature without naming one, and adding a feature touches
one file (plus its stage in ``run/schema.py: STAGES``, and an executor in ``run/runner.py: EXECUTORS`` for a step
kind of its own). Its report section registers the same way, in ``lm_forget/analysis/<feature>_report.py``.

Hooks run in ascending ``order`` (then name), each at a fixed place of the plan or of the checks:

- ``at_model(ctx, scored)``: after the held-out eval of each model an eval stage scores (``eval_pretrained``: the
  base model; ``eval_finetuned``: each fine-tuned model; ``eval_forget``: each forget cell);
- ``after_phase(ctx, phase)``: once an eval stage has scored all its models (phase pretrained, finetuned, forget);
- ``after_forget(ctx)``: after the eval stages and the forget cells (its own stages: relearn, mia...);
- ``check(config)``: before the task lists are completed; ``complete(config)``: the task lists it completes
  (``{"utility": [...]}``); ``check_completed(config, check_tasks)``: against the completed lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

from lm_forget.discovery import add_once, import_modules, origin

if TYPE_CHECKING:  # run.cells imports run.config, which imports run.checks, which imports this module
    from lm_forget.run.cells import Cell
    from lm_forget.run.schema import RunConfig


class AddStep(Protocol):
    """``build_plan``'s ``add``: key a step over its settings and deps' keys, append it to the plan, return it."""

    def __call__(self, name: str, kind: str, stage: str, settings: dict[str, Any], deps: tuple[str, ...] = (),
                 cell: Cell | None = None, folder: str | None = None) -> Any: ...


@dataclass(frozen=True)
class PlanContext:
    """What a feature's steps build on.

    Attributes:
        add: adds one keyed step to the plan (:class:`AddStep`).
        config: the study's config.
        model: the base model's settings (the steps of the base model hash them; others hash their train dep).
        eval_common: every eval step's settings (``tasks`` and the eval and data settings).
        cells: every forget cell (:func:`lm_forget.run.cells.forget_cells`).
    """

    add: AddStep
    config: RunConfig
    model: dict[str, Any]
    eval_common: dict[str, Any]
    cells: list[Cell]


@dataclass(frozen=True)
class ScoredModel:
    """One model an eval stage scores, right after its held-out eval.

    Attributes:
        phase: ``pretrained``, ``finetuned`` or ``forget``.
        deps: the train step the model comes from (none for the base model, or without the finetune stage).
        task: the fine-tuned model's own task (``finetune.per_task``; None: the mixture).
        finetune_seed: the fine-tuned model's seed (``seeds.finetune``; None: one fine-tune).
        cell: the forget cell (phase forget).
    """

    phase: str
    deps: tuple[str, ...] = ()
    task: str | None = None
    finetune_seed: int | None = None
    cell: Cell | None = None


@dataclass(frozen=True)
class StudyFeature:
    """One registered study feature; every hook is optional (None: the feature has nothing there).

    Attributes:
        name: its name (that of its report section where it has one).
        order: its place among the features: hooks at the same place run by ascending order (then name).
        at_model: adds its steps for one model an eval stage scores (:class:`ScoredModel`).
        after_phase: adds its steps once an eval stage (phase ``pretrained``, ``finetuned``, ``forget``) is added.
        after_forget: adds its own stages' steps, after the eval stages.
        check: raises ConfigError on its settings, before the task lists are completed.
        complete: the task lists it completes (``tasks.<name>`` -> names), from the unedited config.
        check_completed: raises ConfigError on its settings against the completed task lists (``check_tasks``:
            also resolve task names).
        kinds: step kinds of its own whose outputs the ``analyze`` step reads (``eval`` and ``features`` it
            reads anyway).
    """

    name: str
    order: int
    at_model: Callable[[PlanContext, ScoredModel], None] | None = None
    after_phase: Callable[[PlanContext, str], None] | None = None
    after_forget: Callable[[PlanContext], None] | None = None
    check: Callable[[RunConfig], None] | None = None
    complete: Callable[[RunConfig], dict[str, list[str]]] | None = None
    check_completed: Callable[[RunConfig, bool], None] | None = None
    kinds: tuple[str, ...] = ()


FEATURES: dict[str, StudyFeature] = {}


def _hooks(feature: StudyFeature) -> str:
    """Where a feature's hooks are defined (a module imported twice registers the same feature again)."""
    return ", ".join(origin(hook) for f in fields(feature) if callable(hook := getattr(feature, f.name)))


def register_feature(feature: StudyFeature) -> StudyFeature:
    """Add ``feature`` to the registry (the same feature again is a no-op; another one of that name an error)."""
    return add_once(FEATURES, feature.name, feature, what="study feature", where=_hooks)


def registered_features() -> list[StudyFeature]:
    """Every feature, in hook order (imports each ``lm_forget.run.*_steps`` module, which registers its own)."""
    import_modules("lm_forget.run", suffix="_steps")
    return sorted(FEATURES.values(), key=lambda f: (f.order, f.name))
