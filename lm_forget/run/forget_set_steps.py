"""The forget-set feature, one module: the evaluations of every model on exactly the docs each forget model was
trained on (added to a plan), and the inputs of the forget-set and learning-order sections
(:mod:`lm_forget.analysis.protocol_report`): per forget cell its forget-set and held-out evaluations, and the
training-dynamics files of the fine-tune and forget steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lm_forget.run.cells import (
    FORGET_SET,
    finetune_name,
    finetuned_eval_name,
    finetuned_for,
    forget_cells,
    forget_set_name,
)
from lm_forget.run.config import RunConfig
from lm_forget.run.study_features import PlanContext, ScoredModel, StudyFeature, register_feature


def add_forget_set_evals(add: Any, config: RunConfig, phase: str, model: dict[str, Any],
                          eval_common: dict[str, Any], deps: tuple[str, ...] = (), task: str | None = None,
                          finetune_seed: int | None = None) -> None:
    """Score exactly the docs each forget model was trained on (``eval_on=train``, ``train_size=N``).

    Pools nest (the first N docs of any larger pool), so per forget-set size N the pretrained and the
    fine-tuned model are scored once on each forgotten task's first N docs, and each forget cell
    (``phase`` forget) on its own N docs.
    """
    forget_tasks = [task] if task else list(config.tasks.forget)  # a per-task fine-tuned model: its own task
    if not forget_tasks or "forget" not in config.stages:
        return
    common = {k: v for k, v in eval_common.items() if k not in ("tasks", "limit")}  # scored whole
    for n in config.forget_sizes:
        pool = {"eval_on": "train", "train_size": int(n or config.data.train_size)}
        if phase != "forget":
            settings = {"model": model} if phase == "pretrained" else {}
            add(forget_set_name(phase, n, task=task, finetune_seed=finetune_seed), "eval", f"eval_{phase}",
                {**settings, "phase": phase, **common, "tasks": forget_tasks, "forget_set": pool}, deps,
                folder=FORGET_SET)
            continue
        for cell in (c for c in forget_cells(config) if c.n == n and c.task in forget_tasks):
            add(forget_set_name(phase, n, cell.id), "eval", "eval_forget",
                {"phase": phase, **common, "tasks": [cell.task], "forget_set": pool}, (f"forget/{cell.id}",),
                cell=cell, folder=FORGET_SET)


def protocol_cells(plan: Any) -> list[Any]:
    """Per forget cell, the lm-eval folders of its forget-set and held-out evaluations (analysis input)."""
    return [cell for _, cell in method_protocol_cells(plan)]


def method_protocol_cells(plan: Any) -> list[tuple[str | None, Any]]:
    """(method id or None, ``ProtocolCell``) of every forget cell, method-major."""
    from lm_forget.analysis.protocol_report import ProtocolCell

    by_name = plan.by_name
    cells = []
    for c in forget_cells(plan.config):
        cid, task, n, fs = c.id, c.task, c.n, c.finetune_seed
        cell = ProtocolCell(task=task, n=n, seed=c.replicate)
        ft = finetuned_for(plan.config, task)  # the model this task was forgotten from
        names = {"forget_set": {"pretrained": forget_set_name("pretrained", n),
                                "finetuned": forget_set_name("finetuned", n, task=ft, finetune_seed=fs),
                                "forget": forget_set_name("forget", n, cid)},
                 "held_out": {"pretrained": "eval_pretrained", "finetuned": finetuned_eval_name(ft, fs),
                              "forget": f"eval_forget/{cid}"}}
        for kind, phases in names.items():
            for phase, name in phases.items():
                step = by_name.get(name)
                if step is not None and step.is_done():
                    getattr(cell, kind)[phase] = step.output
        held = by_name.get(f"eval_forget/{cid}")
        if held is not None:
            cell.other_tasks = [t for t in held.settings["tasks"] if t != task]
        cells.append((c.method, cell))
    return cells


def dynamics_inputs(plan: Any) -> dict[str, tuple[Path, list[Path]]]:
    """Per ``[method-]n<N>-[f<fs>]s<seed>``: its fine-tune's ``dynamics.parquet`` and the forget cells' (those
    that exist). The mixture design only (the config refuses dynamics with ``finetune.per_task``)."""
    from lm_forget.train.dynamics import DYNAMICS_FILE

    by_name = plan.by_name
    groups: dict[str, tuple[Path, list[Path]]] = {}
    for c in forget_cells(plan.config):
        finetune, forget = by_name.get(finetune_name(None, c.finetune_seed)), by_name.get(f"forget/{c.id}")
        if finetune is None or forget is None or not (finetune.output / DYNAMICS_FILE).is_file():
            continue
        label = f"{c.method + '-' if c.method else ''}n{c.n}-{c.seed_label}"
        groups.setdefault(label, (finetune.output / DYNAMICS_FILE, []))
        if (forget.output / DYNAMICS_FILE).is_file():
            groups[label][1].append(forget.output / DYNAMICS_FILE)
    return {label: group for label, group in groups.items() if group[1]}


def _at_model(ctx: PlanContext, scored: ScoredModel) -> None:
    """The base and each fine-tuned model on every forget set (the forget cells follow all cells' evals)."""
    if scored.phase != "forget":
        add_forget_set_evals(ctx.add, ctx.config, scored.phase, ctx.model, ctx.eval_common, scored.deps,
                             task=scored.task, finetune_seed=scored.finetune_seed)


def _after_phase(ctx: PlanContext, phase: str) -> None:
    """Each forget cell on its own forget set, once every cell's held-out eval is in the plan."""
    if phase == "forget":
        add_forget_set_evals(ctx.add, ctx.config, phase, ctx.model, ctx.eval_common)


register_feature(StudyFeature("forget_set", order=10, at_model=_at_model, after_phase=_after_phase))
