"""Forgetting metrics per task and split: accuracies (Wilson CIs), and paired-bootstrap CIs over docs for the
forget gap, the forget drop, both forget ratios and the behaviour category."""

from __future__ import annotations

import math

import numpy as np

from lm_forget.analysis.decide import behaviour_decision, chance_decision
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.uncertainty import Interval, resample_indices, resampled_means, stable_rng

BEHAVIOURS = {
    "kept": "forget ~ fine-tuned: the drop acc_ft - acc_forget is shown < margin (one-sided paired t-test)",
    "to_pretrained": "drops to or below pretrained: the drop is shown > margin and acc_forget - acc_pretrained "
                     "is shown < margin",
    "partial": "drops but stays above pretrained: the drop and acc_forget - acc_pretrained are both shown > margin",
    "inconclusive": "the tests leave two or more categories (listed in behaviour_candidates)",
    "needs >= N docs": "inconclusive, and even no difference at all could not be shown within the margin at this n "
                       "(N from the observed per-doc SD of the comparison left open)",
}


def accuracy_ci(k: int, n: int, confidence_level: float = 0.95) -> tuple[float, float, float]:
    """Accuracy k/n and its Wilson interval (``scipy.stats.binomtest(...).proportion_ci``)."""
    from scipy.stats import binomtest

    if n == 0:
        return math.nan, math.nan, math.nan
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence_level, method="wilson")
    return k / n, float(ci.low), float(ci.high)


def forget_gap(acc_forget: float, chance: float = 0.5) -> float:
    """Forget gap = acc_after_forget - chance (0.5 for two choices)."""
    return acc_forget - chance


def forget_ratio(acc_ft: float, acc_forget: float, *, chance: float = 0.5, min_denominator: float = 0.05) -> float:
    """Random-label forget ratio (acc_ft - acc_forget) / (acc_ft - chance); NaN unless the fine-tuned model is
    above chance by at least ``min_denominator`` (a model that never learned a task cannot forget it)."""
    den = acc_ft - chance
    return (acc_ft - acc_forget) / den if den >= min_denominator else math.nan


def forget_ratio_flipped(acc_ft: float, acc_forget: float, *, min_denominator: float = 0.05) -> float:
    """Flipped-label forget ratio (acc_ft - acc_forget) / (acc_ft - (1 - acc_ft)); NaN unless the
    denominator is at least ``min_denominator`` (positive)."""
    den = acc_ft - (1.0 - acc_ft)
    return (acc_ft - acc_forget) / den if den >= min_denominator else math.nan


def behaviour(acc_pre: float, acc_ft: float, acc_forget: float, opts: AnalysisOptions) -> str:
    """The three behaviours of point estimates, with the margin of ``opts`` (no test: see ``behaviour_decision``)."""
    if acc_ft - acc_forget <= opts.margin:
        return "kept"
    if acc_forget <= acc_pre + opts.margin:
        return "to_pretrained"
    return "partial"


def ratio_definition(acc_ft_low: float, chance: float, opts: AnalysisOptions) -> str:
    """Why a forget ratio is undefined (empty when it is defined): the fine-tuned model must be reliably
    above chance, i.e. its accuracy's lower CI bound above chance + ``min_denominator``."""
    if not math.isfinite(acc_ft_low):
        return "undefined: no fine-tuned accuracy"
    if acc_ft_low <= chance + opts.min_denominator:
        return (f"undefined: fine-tuned accuracy not reliably above chance (lower CI bound {acc_ft_low:.3f} "
                f"<= chance {chance:.2f} + min_denominator {opts.min_denominator})")
    return ""


def _ratio_draws(ft: np.ndarray, fg: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (ft - fg) / np.where(den > 0, den, 1.0), np.nan)


def _interval_row(name: str, iv: Interval) -> dict:
    return {name: iv.value, f"{name}_lo": iv.low, f"{name}_hi": iv.high}


def group_metrics(g, task: str, split: str, opts: AnalysisOptions, phases=("pretrained", "finetuned", "forget"),
                  seed_tag: object = "") -> dict:
    """The metrics row of one (task, split) group of joined docs (see :func:`task_metrics`)."""
    n = len(g)
    level = opts.confidence_level
    chance = float((1.0 / g["n_choices"]).mean())  # 0.5 for the binarized suite
    row = {"task": task, "split": split, "n": n, "chance": chance}
    for phase in phases:
        acc, lo, hi = accuracy_ci(int(g[f"correct_{phase}"].sum()), n, level)
        row |= {f"acc_{phase}": acc, f"acc_{phase}_lo": lo, f"acc_{phase}_hi": hi,
                f"confidence_{phase}": float(g[f"p_gold_{phase}"].mean())}
    idx = resample_indices(n, opts.n_bootstrap, stable_rng(opts.seed, task, split, seed_tag))
    boot = resampled_means({p: g[f"correct_{p}"].to_numpy(dtype=float) for p in phases}, idx)
    ft, fg, pre = row["acc_finetuned"], row["acc_forget"], row["acc_pretrained"]
    b_ft, b_fg, b_pre = boot["finetuned"], boot["forget"], boot["pretrained"]
    gap = Interval.of(forget_gap(fg, chance), b_fg - chance, level)
    drop = Interval.of(ft - fg, b_ft - b_fg, level)
    above_pre = Interval.of(fg - pre, b_fg - b_pre, level)
    row |= (_interval_row("forget_gap", gap) | _interval_row("forget_drop", drop)
            | _interval_row("forget_vs_pretrained", above_pre))
    note = ratio_definition(row["acc_finetuned_lo"], chance, opts)
    for name, den, den_b in (("forget_ratio", ft - chance, b_ft - chance),
                             ("forget_ratio_flipped", 2 * ft - 1, 2 * b_ft - 1)):
        if note:
            row |= {name: math.nan, f"{name}_lo": math.nan, f"{name}_hi": math.nan}
        else:
            row |= _interval_row(name, Interval.of((ft - fg) / den, _ratio_draws(b_ft, b_fg, den_b), level))
    row["ratio_note"] = note
    cols = {p: g[f"correct_{p}"].to_numpy(dtype=float) for p in phases}
    word, cats, p = behaviour_decision(cols["finetuned"] - cols["forget"], cols["forget"] - cols["pretrained"],
                                       margin=opts.margin, alpha=opts.alpha)
    row["behaviour"] = word
    row["behaviour_candidates"] = "|".join(cats)
    row |= {f"p_{name}": value for name, value in p.items()}
    at = chance_decision(int(cols["forget"].sum()), n, chance=chance, margin=opts.margin, alpha=opts.alpha)
    row |= {"at_chance": at.verdict, "at_chance_p": at.p, "at_chance_n_needed": at.n_needed}
    row["_boot"] = boot
    return row


def task_metrics(joined, opts: AnalysisOptions, *, keep_draws: bool = False):
    """One row per (task, split): n, accuracies with Wilson CIs, gap / drop / ratios with paired-bootstrap CIs,
    ratio_note (why a ratio is undefined), behaviour and at_chance decided by tests at ``opts.margin`` and
    ``opts.alpha`` (:mod:`lm_forget.analysis.decide`), mean confidences.

    ``keep_draws``: also return {(task, split): {phase: bootstrap accuracies}} for pooled analyses.
    """
    import pandas as pd

    rows, draws = [], {}
    for (task, split), g in joined.groupby(["task", "split"], sort=True):
        row = group_metrics(g, task, split, opts)
        draws[(task, split)] = row.pop("_boot")
        rows.append(row)
    frame = pd.DataFrame(rows)
    return (frame, draws) if keep_draws else frame
