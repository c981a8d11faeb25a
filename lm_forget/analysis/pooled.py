"""Several seeds: seed-averaged task outcomes and a hierarchical bootstrap (tasks, seeds, then docs).

Replicates are (fine-tune seed, forget seed) pairs: fine-tune seeds vary the fine-tuned model, forget seeds the
forget pass from it; every replicate is scored on the same docs. The headline task-level test uses each task's
outcome averaged over replicates; its CI resamples tasks, then fine-tune seeds within each task, then forget
seeds within each fine-tune seed, then docs (the per-replicate doc-bootstrap draws of
:func:`metrics.task_metrics`, which share one doc resample per task across replicates, as the docs are shared).
Per-replicate tests stay as sensitivity rows.
"""

from __future__ import annotations

import math

import numpy as np

from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.uncertainty import percentile_ci, stable_rng


def outcome_draws(boot: dict[str, np.ndarray], outcome: str, chance: float) -> np.ndarray:
    """Bootstrap draws of the task outcome from the phases' bootstrap accuracies."""
    ft, fg = boot["finetuned"], boot["forget"]
    with np.errstate(divide="ignore", invalid="ignore"):
        if outcome == "forget_ratio":
            return np.where(ft - chance > 0, (ft - fg) / (ft - chance), np.nan)
        if outcome == "forget_ratio_flipped":
            return np.where(2 * ft - 1 > 0, (ft - fg) / (2 * ft - 1), np.nan)
    return fg - chance


def pooled_outcomes(per_seed: list, draws: list[dict], opts: AnalysisOptions):
    """Seed-averaged outcome per task and the (tasks, seeds, B) draws of the tasks defined in every seed."""
    tasks = sorted(set.intersection(*(set(m["task"]) for m in per_seed)))
    mean, cube = {}, []
    for task in tasks:
        vals = [float(m.loc[m["task"] == task, opts.outcome].iloc[0]) for m in per_seed]
        if not all(math.isfinite(v) for v in vals):
            continue  # undefined in some seed: the reason is in that seed's ratio_note
        chance = float(per_seed[0].loc[per_seed[0]["task"] == task, "chance"].iloc[0])
        mean[task] = float(np.mean(vals))
        cube.append([outcome_draws(d[(task, opts.split)], opts.outcome, chance) for d in draws])
    return mean, np.asarray(cube, dtype=float)


def resample_replicates(n_boot: int, n_tasks: int, groups: list[int], rng: np.random.Generator) -> np.ndarray:
    """(B, tasks, replicates) replicate indices drawn two-level: fine-tune seeds (``groups``: each replicate's
    fine-tune seed index) with replacement, then forget seeds within each drawn fine-tune seed.

    The design is balanced (every fine-tune seed has the same forget seeds), so each draw keeps the shape."""
    if len(set(groups)) <= 1:  # one fine-tune: forget seeds only
        return rng.integers(0, len(groups), size=(n_boot, n_tasks, len(groups)))
    members = [np.flatnonzero(np.asarray(groups) == g) for g in sorted(set(groups))]
    per = len(members[0])
    if any(len(m) != per for m in members):
        raise ValueError(f"unbalanced replicates: {[len(m) for m in members]} forget seeds per fine-tune seed")
    table = np.stack(members)  # (fine-tune seeds, forget seeds) -> replicate index
    fts = rng.integers(0, len(members), size=(n_boot, n_tasks, len(members)))
    fgs = rng.integers(0, per, size=(n_boot, n_tasks, len(members), per))
    return table[fts[..., None], fgs].reshape(n_boot, n_tasks, len(members) * per)


def hierarchical_spearman_ci(x: np.ndarray, cube: np.ndarray, opts: AnalysisOptions,
                             groups: list[int] | None = None) -> tuple[float, float]:
    """Percentile CI of Spearman(x, replicate-averaged outcome) resampling tasks, then fine-tune seeds (``groups``:
    each replicate's fine-tune seed index; None: one fine-tune), then forget seeds, then docs."""
    from lm_forget.analysis.stats import _rank_corr_rows

    n_tasks, n_seeds, n_boot = cube.shape
    if n_tasks < opts.min_n_test:
        return math.nan, math.nan
    levels = () if groups is None or len(set(groups)) == 1 else ("finetune", len(set(groups)))
    rng = stable_rng(opts.seed, "hierarchical", n_tasks, n_seeds, *levels)
    seeds = resample_replicates(n_boot, n_tasks, groups if groups is not None else [0] * n_seeds, rng)
    b = np.arange(n_boot)[:, None, None]
    t = np.arange(n_tasks)[None, :, None]
    with np.errstate(invalid="ignore"):
        y = np.nanmean(cube[t, seeds, b], axis=2)  # (B, tasks): seeds then docs resampled
    tasks = rng.integers(0, n_tasks, size=(n_boot, n_tasks))
    xs, ys = x[tasks], np.take_along_axis(y, tasks, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = _rank_corr_rows(xs, ys)
    return percentile_ci(rho, opts.confidence_level)
