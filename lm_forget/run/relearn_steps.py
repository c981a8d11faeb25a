"""The relearning stage, one module: its steps (a gold-label fine-tune of each forget output on k docs, its eval,
and the pretrained control), its config checks, and the inputs of its report section
(:func:`lm_forget.analysis.relearn_report.relearn_section`). The pools' docs: :mod:`lm_forget.run.relearn_pools`."""

from __future__ import annotations

from typing import Any

from lm_forget.errors import ConfigError
from lm_forget.run.cells import Cell, finetuned_eval_name, finetuned_for, forget_cells, relearn_name
from lm_forget.run.config import RunConfig
from lm_forget.run.keys import data_settings, train_settings
from lm_forget.run.relearn_pools import check_unrelated, control_name, control_settings, unrelated_task_for
from lm_forget.run.study_features import PlanContext, StudyFeature, register_feature


def add_relearn_steps(add: Any, config: RunConfig, cells: list[Cell],
                       model: dict[str, Any], eval_common: dict[str, Any]) -> None:
    """Per forget cell and ``k``: a gold-label fine-tune of the forget output, then (``eval_relearn``) its eval;
    with ``relearn.control``, the same relearning of the pretrained model (shared by the cells that relearn the
    same docs with the same seed) and its eval.

    Relearn steps belong to their forget cell, so a shard relearns the cells it forgot; controls are shared.
    """
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


def check_relearn(config: RunConfig) -> None:
    """``relearn``: sizes that fit the chosen pool, the forget stage's LoRA choice, in-process docs (the unrelated
    pool's task is checked once the task lists are expanded: ``relearn_pools.check_unrelated``)."""
    section = config.relearn
    if not section.num_examples or any(k < 1 for k in section.num_examples):
        raise ConfigError(f"relearn.num_examples: {section.num_examples}; give positive numbers of docs, "
                          "e.g. [10, 100].")
    if len(set(section.num_examples)) != len(section.num_examples):
        raise ConfigError(f"relearn.num_examples: {section.num_examples} has duplicates.")
    if section.use_lora is not None and section.use_lora != config.forget.use_lora:
        raise ConfigError(f"relearn.use_lora: {section.use_lora} differs from forget.use_lora "
                          f"({config.forget.use_lora}); relearning continues the forget model as it was trained. "
                          "Leave relearn.use_lora unset.")
    if section.dynamics_every is not None:
        raise ConfigError("relearn.dynamics_every: not supported (dynamics score the forget pool); remove it.")
    sizes = [int(n or config.data.train_size) for n in config.forget_sizes]
    for k in section.num_examples:
        if section.pool == "forget_set" and k > min(sizes):
            raise ConfigError(f"relearn.num_examples: {k} docs do not fit in a forget set of {min(sizes)} "
                              "(pool forget_set); lower it or use relearn.pool: held_in.")
        if section.pool == "held_in" and max(sizes) + k > config.data.train_size:
            raise ConfigError(f"relearn.num_examples: {k} held-in docs after a forget set of {max(sizes)} exceed "
                              f"data.train_size {config.data.train_size}; lower it or raise data.train_size.")
    if section.pool in ("held_in", "unrelated") and section.launcher:
        raise ConfigError(f"relearn.launcher: pool {section.pool} trains in this process (it hands the trainer its "
                          "docs); use pool forget_set with a launcher, or drop the launcher.")


def relearn_cells(plan: Any) -> list[Any]:
    """Per forget cell and k, the held-out lm-eval folders of the fine-tuned, forgotten and relearned models, and
    (``relearn.control``) of the pretrained model and the control relearned from it on the same docs."""
    from lm_forget.analysis.relearn_report import RelearnCell

    by_name, config = plan.by_name, plan.config
    cells = []
    for c in forget_cells(config):
        for k in config.relearn.num_examples:
            seed = c.replicate
            relearn = by_name.get(relearn_name(c.id, k))
            unrelated = relearn.settings.get("unrelated_task") if relearn is not None else None
            cell = RelearnCell(task=c.task, n=c.n, seed=seed, k=k, pool=config.relearn.pool, method=c.method,
                               unrelated_task=unrelated)
            fine = finetuned_eval_name(finetuned_for(config, c.task), c.finetune_seed)
            names = {"finetuned": fine if fine in by_name else "eval_pretrained",
                     "forget": f"eval_forget/{c.id}", "relearn": f"eval_{relearn_name(c.id, k)}"}
            if config.relearn.control and relearn is not None:
                names["control"] = control_name(control_settings(relearn.settings), eval_step=True)
                pretrained = by_name.get("eval_pretrained")
                if pretrained is not None and c.task in pretrained.settings["tasks"]:  # else the row says so
                    names["pretrained"] = pretrained.name
            for phase, name in names.items():
                step = by_name.get(name)
                if step is not None and step.is_done():
                    cell.held_out[phase] = step.output
            cells.append(cell)
    return cells


def _after_forget(ctx: PlanContext) -> None:
    if "relearn" in ctx.config.stages:
        add_relearn_steps(ctx.add, ctx.config, ctx.cells, ctx.model, ctx.eval_common)


def _check(config: RunConfig) -> None:
    if "relearn" in config.stages:
        check_relearn(config)


def _check_completed(config: RunConfig, check_tasks: bool) -> None:
    if "relearn" in config.stages:  # the unrelated pool's task, against the expanded matrix tasks
        check_unrelated(config, check_tasks=check_tasks)


register_feature(StudyFeature("relearn", order=30, after_forget=_after_forget, check=_check,
                              check_completed=_check_completed))
