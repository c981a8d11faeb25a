"""Utility-task evaluations (``tasks.utility``): any lm-eval task, scored by lm-eval with its own metrics, on the
pretrained model, on every fine-tuned model and on every forget cell: collateral damage, beside the matrix.

The steps are plain eval steps (lm-eval's ``simple_evaluate`` with ``log_samples``) in the folder
``eval_utility/``; lm-eval's own stderr is computed (``bootstrap_iters``) for the report's fallback interval.
Without ``tasks.utility`` nothing is added, so no existing step key changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lm_forget.run.cells import UTILITY, finetuned_for, forget_cells, seed_label, utility_name
from lm_forget.run.config import RunConfig

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
                           seed=c.seed if c.finetune_seed is None else seed_label(c.seed, c.finetune_seed))
        for phase, name in (("pretrained", utility_name("pretrained")), ("finetuned", fine),
                            ("forget", utility_name("forget", c.id))):
            step = by_name.get(name)
            if step is not None and step.is_done():
                cell.evals[phase] = Path(step.output)
        cells.append(cell)
    return cells
