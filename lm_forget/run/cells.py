"""The cells of a study and the names of its steps: one place, so the plan and its readers agree.

A cell is (method, forgotten task, forget-set size, seed); ``cell_id`` names it. Steps are named after the
stage and, where they belong to one, the cell or task (``forget/<cell>``, ``finetune/<task>``...).
"""

from __future__ import annotations

from typing import Any

from lm_forget.run.config import RunConfig


def cell_id(task: str, n: int | None, seed: int, method: str | None = None) -> str:
    """The id of one forget cell: [method,] task, forget-set size, seed (``npo/forget_boolq/n1000/s0``)."""
    cid = f"{task}/n{n if n is not None else 'all'}/s{seed}"
    return f"{method}/{cid}" if method else cid


def cell_parts(cid: str) -> tuple[str | None, str, str, str]:
    """(method id or None, task, ``n<N>``, ``s<seed>``) of a cell id."""
    parts = cid.split("/")
    return (None, *parts) if len(parts) == 3 else tuple(parts)  # type: ignore[return-value]


def method_axis(config: RunConfig) -> list[Any]:
    """The method axis: the ``forget.methods`` specs, or ``[None]`` (one method, ``label_mode``)."""
    return list(config.forget.method_specs) or [None]


def forget_cells(config: RunConfig) -> list[tuple[Any, str, int | None, int]]:
    """(method spec or None, task, size, seed) of every forget cell, method-major."""
    return [(m, task, n, seed) for m in method_axis(config) for task in config.tasks.forget
            for n in config.forget_sizes for seed in config.seeds]


def method_id(method: Any) -> str | None:
    return method.id if method is not None else None


def finetune_name(task: str | None = None) -> str:
    """Step name of a fine-tune: ``finetune`` (the mixture) or ``finetune/<task>`` (``finetune.per_task``)."""
    return f"finetune/{task}" if task else "finetune"


def finetuned_eval_name(task: str | None = None) -> str:
    """Held-out evaluation of a fine-tuned model: ``eval_finetuned`` or ``eval_finetuned/<task>`` (per task)."""
    return f"eval_finetuned/{task}" if task else "eval_finetuned"


def finetuned_for(config: RunConfig, task: str) -> str | None:
    """The fine-tuned model ``task`` is forgotten from: its own with ``per_task``, else the mixture's (None)."""
    return task if config.finetune.per_task else None


def relearn_name(cid: str, k: int) -> str:
    """Step name of one relearn step (``relearn/<cell>/k<k>``); ``eval_relearn/...`` scores it."""
    return f"relearn/{cid}/k{k}"


FORGET_SET = "eval_forgetset"  # folder of the forget-set evaluations (stage folders keep the held-out ones)


def forget_set_name(phase: str, n: int | None, cid: str | None = None, task: str | None = None) -> str:
    """Step name of a forget-set evaluation: ``eval_forgetset/<cell>``, ``eval_forgetset/<phase>/n<N>``, or
    ``eval_forgetset/finetuned/<task>/n<N>`` (a per-task fine-tuned model on its own task's forget sets)."""
    if cid is not None:
        return f"{FORGET_SET}/{cid}"
    return f"{FORGET_SET}/{phase}/{task + '/' if task else ''}n{n if n is not None else 'all'}"
