"""The cells of a study and the names of its steps: one place, so the plan and its readers agree.

A cell is (method, forgotten task, forget-set size, forget seed[, fine-tune seed]); ``cell_id`` names it.
Steps are named after the stage and, where they belong to one, the cell or task (``forget/<cell>``,
``finetune/<task>``...). Without ``seeds.finetune`` the fine-tune seed is None and no name mentions it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lm_forget.run.config import RunConfig


def seed_label(seed: int, finetune_seed: int | None = None) -> str:
    """``s<seed>``, or ``f<finetune seed>s<seed>`` on a fine-tune seed axis."""
    return f"s{seed}" if finetune_seed is None else f"f{finetune_seed}s{seed}"


def replicate_name(seed: int, finetune_seed: int | None = None) -> int | str:
    """A replicate as report tables name it: the forget seed, or ``f<fine-tune seed>s<seed>`` on that axis."""
    return seed if finetune_seed is None else seed_label(seed, finetune_seed)


def cell_id(task: str, n: int | None, seed: int, method: str | None = None, finetune_seed: int | None = None) -> str:
    """The id of one forget cell: [method,] task, forget-set size, [fine-tune seed +] seed
    (``npo/forget_boolq/n1000/s0``, ``forget_boolq/n1000/f1s0``)."""
    cid = f"{task}/n{n if n is not None else 'all'}/{seed_label(seed, finetune_seed)}"
    return f"{method}/{cid}" if method else cid


@dataclass(frozen=True)
class Cell:
    """One forget cell of a study, typed: the plan is queried by these fields and names are rendered from them
    (never parsed back).

    Attributes:
        method: the forgetting method's id on a ``forget.methods`` axis (None: no axis, ``forget.method``).
        task: the forgotten task.
        n: forget-set size (None: the task's whole training pool).
        seed: forget seed.
        finetune_seed: fine-tune seed on a ``seeds.finetune`` axis (None: no such axis).
    """

    method: str | None
    task: str
    n: int | None
    seed: int
    finetune_seed: int | None = None

    @property
    def id(self) -> str:
        return cell_id(self.task, self.n, self.seed, self.method, self.finetune_seed)

    @property
    def seed_label(self) -> str:
        """``s<seed>`` or ``f<fine-tune seed>s<seed>``: how report tables name the replicate."""
        return seed_label(self.seed, self.finetune_seed)

    @property
    def replicate(self) -> int | str:
        """The replicate as report tables name it (:func:`replicate_name`)."""
        return replicate_name(self.seed, self.finetune_seed)

    def matches(self, **fields: Any) -> bool:
        """Whether every given field (method, task, n, seed, finetune_seed) has the given value."""
        return all(getattr(self, name) == value for name, value in fields.items())

    def __str__(self) -> str:
        return self.id


def method_axis(config: RunConfig) -> list[Any]:
    """The method axis: the ``forget.methods`` specs, or ``[None]`` (one method, ``forget.method``)."""
    return list(config.forget.method_specs) or [None]


def method_spec(config: RunConfig, method: str | None) -> Any:
    """The ``forget.methods`` spec whose id is ``method`` (None: no method axis)."""
    return None if method is None else next(m for m in config.forget.method_specs if m.id == method)


def forget_cells(config: RunConfig) -> list[Cell]:
    """Every forget cell, method-major, then task, size, fine-tune seed, forget seed."""
    return [Cell(method_id(m), task, n, seed, fs) for m in method_axis(config) for task in config.tasks.forget
            for n in config.forget_sizes for fs in config.finetune_seeds for seed in config.forget_seeds]


def replicates(config: RunConfig) -> list[tuple[int | None, int]]:
    """(fine-tune seed, forget seed) of every replicate of a cell."""
    return [(fs, seed) for fs in config.finetune_seeds for seed in config.forget_seeds]


def method_id(method: Any) -> str | None:
    return method.id if method is not None else None


def _finetuned_suffix(task: str | None, seed: int | None) -> str:
    return (f"/{task}" if task else "") + (f"/f{seed}" if seed is not None else "")


def finetune_name(task: str | None = None, seed: int | None = None) -> str:
    """Step name of a fine-tune: ``finetune`` (the mixture) or ``finetune/<task>`` (``finetune.per_task``),
    with ``/f<seed>`` on a fine-tune seed axis (``seeds.finetune``)."""
    return "finetune" + _finetuned_suffix(task, seed)


def finetuned_eval_name(task: str | None = None, seed: int | None = None) -> str:
    """Held-out evaluation of a fine-tuned model: ``eval_finetuned[/<task>][/f<seed>]``."""
    return "eval_finetuned" + _finetuned_suffix(task, seed)


def finetuned_features_name(task: str | None = None, seed: int | None = None) -> str:
    """Features of a fine-tuned model: ``features/finetuned[/<task>][/f<seed>]``."""
    return "features/finetuned" + _finetuned_suffix(task, seed)


def finetuned_for(config: RunConfig, task: str) -> str | None:
    """The fine-tuned model ``task`` is forgotten from: its own with ``per_task``, else the mixture's (None)."""
    return task if config.finetune.per_task else None


def relearn_name(cid: str, k: int) -> str:
    """Step name of one relearn step (``relearn/<cell>/k<k>``); ``eval_relearn/...`` scores it."""
    return f"relearn/{cid}/k{k}"


FORGET_SET = "eval_forgetset"  # folder of the forget-set evaluations (stage folders keep the held-out ones)


def forget_set_name(phase: str, n: int | None, cid: str | None = None, task: str | None = None,
                    finetune_seed: int | None = None) -> str:
    """Step name of a forget-set evaluation: ``eval_forgetset/<cell>``, ``eval_forgetset/<phase>/n<N>``, or
    ``eval_forgetset/finetuned[/<task>][/f<seed>]/n<N>`` (a per-task or per-seed fine-tuned model)."""
    if cid is not None:
        return f"{FORGET_SET}/{cid}"
    return f"{FORGET_SET}/{phase}{_finetuned_suffix(task, finetune_seed)}/n{n if n is not None else 'all'}"


UTILITY = "eval_utility"  # folder of the utility-task evaluations (any lm-eval task, not binarized)


def utility_name(phase: str, cid: str | None = None, task: str | None = None, finetune_seed: int | None = None) -> str:
    """Step name of a utility evaluation: ``eval_utility/<cell>`` (a forget cell), ``eval_utility/pretrained``, or
    ``eval_utility/finetuned[/<task>][/f<seed>]`` (each fine-tuned model)."""
    if cid is not None:
        return f"{UTILITY}/{cid}"
    return f"{UTILITY}/{phase}" + (_finetuned_suffix(task, finetune_seed) if phase == "finetuned" else "")
