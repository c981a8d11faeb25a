"""Utility-task evaluations (``tasks.utility``): any lm-eval task, scored by lm-eval with its own metrics, on the
pretrained model, on every fine-tuned model and on every forget cell: collateral damage, beside the matrix.

The steps are plain eval steps (lm-eval's ``simple_evaluate`` with ``log_samples``) in the folder
``eval_utility/``; lm-eval's own stderr is computed (``bootstrap_iters``) for the report's fallback interval.
Without ``tasks.utility`` nothing is added, so no existing step key changes.

Checks (:func:`check_utility_tasks`): every entry of ``tasks.utility`` must be an lm-eval task that lm-eval's own
``TaskManager`` finds (built-in, derived, or a user YAML in ``tasks.task_dirs``), and none of the forget suite (those
are already scored). The names resolve exactly as the eval steps will load them
(:func:`lm_forget.run.evaluate.task_manager_for`: the suite and the task folders first, lm-eval's ~14k built-ins
indexed only when a name is not found there). The report section:
:func:`lm_forget.analysis.utility_report.utility_section`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lm_forget.errors import ConfigError, did_you_mean
from lm_forget.run.cells import UTILITY, finetuned_for, forget_cells, utility_name
from lm_forget.run.config import RunConfig
from lm_forget.run.study_features import PlanContext, ScoredModel, StudyFeature, register_feature

#: lm-eval's bootstrap resamples for the stderr of non-mean metrics (f1, mcc...; means have a closed form)
STDERR_ITERS = 1000


def add_utility_eval(add: Any, config: RunConfig, phase: str, eval_common: dict[str, Any], *,
                     deps: tuple[str, ...] = (), model: dict[str, Any] | None = None, cell: Any = None,
                     task: str | None = None, finetune_seed: int | None = None) -> None:
    """One utility evaluation of one model (``phase``: pretrained, finetuned or forget); none without utility tasks.

    ``model``: the base model's settings (pretrained; the others are keyed by the train step in ``deps``);
    ``cell``: the forget cell (its step shards with the cell); ``task``/``finetune_seed``: which fine-tuned model.
    """
    if not config.tasks.utility:
        return
    settings = {**({"model": model} if model else {}), "phase": phase,
                **{k: v for k, v in eval_common.items() if k != "tasks"},
                "tasks": list(config.tasks.utility), "bootstrap_iters": STDERR_ITERS}
    add(utility_name(phase, cell.id if cell else None, task, finetune_seed), "eval", f"eval_{phase}", settings,
        deps, cell=cell,
        folder=UTILITY)


def utility_cells(plan: Any) -> list[Any]:
    """Per forget cell: the utility evaluations of its fine-tuned model, of itself, and of the pretrained model."""
    from lm_forget.analysis.utility_report import UtilityCell

    by_name, config = plan.by_name, plan.config
    cells = []
    for c in forget_cells(config):
        fine = utility_name("finetuned", task=finetuned_for(config, c.task), finetune_seed=c.finetune_seed)
        if fine not in by_name:
            fine = utility_name("pretrained")  # no fine-tune stage: the base model is the "fine-tuned" one
        cell = UtilityCell(cell=c.id, task=c.task, n=c.n, method=c.method,
                           seed=c.replicate)
        for phase, name in (("pretrained", utility_name("pretrained")), ("finetuned", fine),
                            ("forget", utility_name("forget", c.id))):
            step = by_name.get(name)
            if step is not None and step.is_done():
                cell.evals[phase] = Path(step.output)
        cells.append(cell)
    return cells


UTILITY_STAGES = ("eval_pretrained", "eval_finetuned", "eval_forget")  # the stages that score utility tasks


def forget_task_names(config: RunConfig) -> set[str]:
    """The binarized forget tasks: the suite and the derived tasks of ``tasks.task_dirs``."""
    from lm_forget.data.api import suite_task_names, yaml_tasks

    return {*suite_task_names(), *yaml_tasks(config.task_dir_paths)}


def _forget_members(name: str, manager: Any, forget: set[str]) -> list[str]:
    """The forget tasks ``name`` stands for: itself, the tasks of a tag, or the tasks listed by a group."""
    if name in forget:
        return [name]
    entry = manager.task_index.get(name)
    kind = getattr(getattr(entry, "kind", None), "name", "")
    if kind == "TAG":
        return sorted(t for t in forget if t in manager.task_index and name in manager.task_index[t].tags)
    if kind == "GROUP":
        listed = (entry.cfg or {}).get("task") or []
        return sorted(t for t in listed if isinstance(t, str) and t in forget)
    return []


def check_utility_tasks(config: RunConfig) -> list[str]:
    """``tasks.utility`` with patterns expanded: every name resolved through lm-eval's TaskManager, forget tasks
    refused (the config is not edited)."""
    entries = config.tasks.utility
    if not entries:
        return []
    if not any(stage in config.stages for stage in UTILITY_STAGES):
        raise ConfigError(f"tasks.utility: {entries} is scored by the eval stages ({', '.join(UTILITY_STAGES)}), "
                          "none of which is in stages; add them or drop tasks.utility.")
    if "suite" in entries:
        raise ConfigError("tasks.utility: 'suite' is the forget suite, already scored in tasks.eval; utility tasks "
                          "are other lm-eval tasks (e.g. mmlu, hellaswag, or a YAML of tasks.task_dirs).")
    from lm_forget.run.evaluate import task_manager_for

    manager = task_manager_for(config, [e for e in entries if not any(c in e for c in "*?[")] or ["-"])
    known = manager.all_tasks
    forget = forget_task_names(config)
    expanded: list[str] = []
    for entry in entries:
        if any(c in entry for c in "*?["):
            names = manager.match_tasks([entry])
            if not names:
                raise ConfigError(f"tasks.utility: pattern {entry!r} matches no lm-eval task.")
        elif entry not in known:
            raise ConfigError(f"tasks.utility: unknown lm-eval task {entry!r}.{did_you_mean(entry, known)} lm-eval "
                              "finds built-in tasks, and YAMLs in tasks.task_dirs (`lm_eval ls tasks` lists them).")
        else:
            names = [entry]
        for name in names:
            members = _forget_members(name, manager, forget)
            if members:
                shown = ", ".join(members[:3]) + (", ..." if len(members) > 3 else "")
                subject = f"{name!r}" + (f" (from {entry!r})" if name != entry else "")
                raise ConfigError(
                    f"tasks.utility: {subject} is {'' if members == [name] else f'or holds ({shown}) '}a forget "
                    "suite task: those are the study itself (list them in tasks.eval). Utility tasks are other "
                    "lm-eval tasks, e.g. the source task (boolq for forget_boolq), mmlu, or a YAML of "
                    "tasks.task_dirs.")
        expanded += [n for n in names if n not in expanded]
    return expanded


def _at_model(ctx: PlanContext, scored: ScoredModel) -> None:
    add_utility_eval(ctx.add, ctx.config, scored.phase, ctx.eval_common, deps=scored.deps,
                     model=ctx.model if scored.phase == "pretrained" else None, cell=scored.cell, task=scored.task,
                     finetune_seed=scored.finetune_seed)


def _complete(config: RunConfig) -> dict[str, list[str]]:
    return {"utility": check_utility_tasks(config)}  # lm-eval tasks of any kind, resolved by its TaskManager


register_feature(StudyFeature("utility", order=20, at_model=_at_model, complete=_complete))
