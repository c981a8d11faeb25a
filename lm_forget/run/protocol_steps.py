"""The protocol's extra steps: forget-set evaluations (every model on exactly the docs each forget model was
trained on) and relearning (gold labels again on a few docs, with its pretrained control), added to a plan."""

from __future__ import annotations

from typing import Any

from lm_forget.run.cells import FORGET_SET, Cell, forget_cells, forget_set_name, relearn_name
from lm_forget.run.config import RunConfig
from lm_forget.run.keys import data_settings, train_settings


def add_relearn_steps(add: Any, config: RunConfig, cells: list[Cell],
                       model: dict[str, Any], eval_common: dict[str, Any]) -> None:
    """Per forget cell and ``k``: a gold-label fine-tune of the forget output, then (``eval_relearn``) its eval;
    with ``relearn.control``, the same relearning of the pretrained model (shared by the cells that relearn the
    same docs with the same seed) and its eval.

    Relearn steps belong to their forget cell, so a shard relearns the cells it forgot; controls are shared.
    """
    from lm_forget.run.relearn_pools import control_name, control_settings, unrelated_task_for

    section = config.relearn
    lora = config.forget.use_lora if section.use_lora is None else section.use_lora
    exclude = ("num_examples", "seed", "use_lora", "unrelated_task", "control")
    train = {**train_settings(section, exclude=exclude), "use_lora": lora}
    scope = config.eval.forget_scope
    controls: dict[str, tuple[dict[str, Any], list[str]]] = {}  # name -> (settings, tasks of the cells using it)
    for cell in cells:
        cid = cell.id
        for k in section.num_examples:
            settings = {
                "model": model, "stage": "relearn", "task": cell.task, "num_examples": k, "pool": section.pool,
                "forget_size": int(cell.n or config.data.train_size), "seed": cell.seed,
                "data": data_settings(config.data), "task_dirs": [str(p) for p in config.task_dir_paths],
                "train": train,
            }
            if section.pool == "unrelated":  # only then: the keys of the other pools stay as they were
                settings["unrelated_task"] = unrelated_task_for(config, cell.task)
            add(relearn_name(cid, k), "train", "relearn", settings, (f"forget/{cid}",), cell=cell)
            if section.control:
                controls.setdefault(control_name(settings), (control_settings(settings), []))[1].append(cell.task)
    for name, (settings, _) in controls.items():
        add(name, "train", "relearn_control", settings)
    if "eval_relearn" not in config.stages:
        return
    for cell in cells:
        for k in section.num_examples:
            add(f"eval_{relearn_name(cell.id, k)}", "eval", "eval_relearn",
                {"phase": "relearn", **eval_common, **({"tasks": [cell.task]} if scope == "self" else {})},
                (relearn_name(cell.id, k),), cell=cell)
    for name, (settings, tasks) in controls.items():
        own = {"tasks": list(dict.fromkeys(tasks))} if scope == "self" else {}
        add(control_name(settings, eval_step=True), "eval", "eval_relearn_control",
            {"phase": "relearn_control", **eval_common, **own}, (name,))


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
