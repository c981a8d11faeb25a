"""The protocol's extra steps: forget-set evaluations (every model on exactly the docs each forget model was
trained on) and relearning (gold labels again on a few docs of each forgotten task), added to a plan."""

from __future__ import annotations

from typing import Any

from lm_forget.run.cells import FORGET_SET, Cell, forget_cells, forget_set_name, relearn_name
from lm_forget.run.config import RunConfig
from lm_forget.run.keys import data_settings, train_settings


def add_relearn_steps(add: Any, config: RunConfig, cells: list[Cell],
                       model: dict[str, Any], eval_common: dict[str, Any]) -> None:
    """Per forget cell and ``k``: a gold-label fine-tune of the forget output, then (``eval_relearn``) its eval.

    Both belong to the forget cell, so a shard relearns the cells it forgot.
    """
    section = config.relearn
    lora = config.forget.use_lora if section.use_lora is None else section.use_lora
    train = {**train_settings(section, exclude=("num_examples", "seed", "use_lora")), "use_lora": lora}
    for cell in cells:
        cid = cell.id
        for k in section.num_examples:
            add(relearn_name(cid, k), "train", "relearn", {
                "model": model, "stage": "relearn", "task": cell.task, "num_examples": k, "pool": section.pool,
                "forget_size": int(cell.n or config.data.train_size), "seed": cell.seed,
                "data": data_settings(config.data), "task_dirs": [str(p) for p in config.task_dir_paths],
                "train": train,
            }, (f"forget/{cid}",), cell=cid)
    if "eval_relearn" in config.stages:
        scope = config.eval.forget_scope
        for cell in cells:
            for k in section.num_examples:
                add(f"eval_{relearn_name(cell.id, k)}", "eval", "eval_relearn",
                    {"phase": "relearn", **eval_common, **({"tasks": [cell.task]} if scope == "self" else {})},
                    (relearn_name(cell.id, k),), cell=cell.id)


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
                cell=cell.id, folder=FORGET_SET)
