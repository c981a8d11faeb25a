"""Several forget seeds: seed-averaged task outcomes and a hierarchical bootstrap (tasks, then seeds, then docs).

Seeds vary the forget pass; every seed's forget model is scored on the same docs. The headline task-level
test uses each task's outcome averaged over seeds; its CI resamples tasks, then seeds within each task, then
docs (the per-seed doc-bootstrap draws of :func:`metrics.task_metrics`, which share one doc resample per
task across seeds, as the docs are shared). Per-seed tests stay as sensitivity rows.
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


def hierarchical_spearman_ci(x: np.ndarray, cube: np.ndarray, opts: AnalysisOptions) -> tuple[float, float]:
    """Percentile CI of Spearman(x, seed-averaged outcome) resampling tasks, then seeds, then docs."""
    from lm_forget.analysis.stats import _rank_corr_rows

    n_tasks, n_seeds, n_boot = cube.shape
    if n_tasks < opts.min_n_test:
        return math.nan, math.nan
    rng = stable_rng(opts.seed, "hierarchical", n_tasks, n_seeds)
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_tasks, n_seeds))
    b = np.arange(n_boot)[:, None, None]
    t = np.arange(n_tasks)[None, :, None]
    with np.errstate(invalid="ignore"):
        y = np.nanmean(cube[t, seeds, b], axis=2)  # (B, tasks): seeds then docs resampled
    tasks = rng.integers(0, n_tasks, size=(n_boot, n_tasks))
    xs, ys = x[tasks], np.take_along_axis(y, tasks, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = _rank_corr_rows(xs, ys)
    return percentile_ci(rho, opts.confidence_level)
