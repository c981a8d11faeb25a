"""Forgetting metrics per task and split: accuracies with Wilson CIs, forget gap, forget ratios, behaviour."""

from __future__ import annotations

import math

from lm_forget.analysis.options import AnalysisOptions

BEHAVIOURS = {
    "kept": "forget ~ fine-tuned (acc_ft - acc_forget <= same_margin)",
    "to_pretrained": "drops to or below pretrained (acc_forget <= acc_pretrained + pretrained_margin)",
    "partial": "drops but stays above pretrained",
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
    """Random-label forget ratio (acc_ft - acc_forget) / (acc_ft - chance); NaN when the denominator is tiny."""
    den = acc_ft - chance
    return (acc_ft - acc_forget) / den if abs(den) >= min_denominator else math.nan


def forget_ratio_flipped(acc_ft: float, acc_forget: float, *, min_denominator: float = 0.05) -> float:
    """Flipped-label forget ratio (acc_ft - acc_forget) / (acc_ft - (1 - acc_ft))."""
    den = acc_ft - (1.0 - acc_ft)
    return (acc_ft - acc_forget) / den if abs(den) >= min_denominator else math.nan


def behaviour(acc_pre: float, acc_ft: float, acc_forget: float, opts: AnalysisOptions) -> str:
    """The seed's three behaviours, with the thresholds of ``opts`` (see ``BEHAVIOURS``)."""
    if acc_ft - acc_forget <= opts.same_margin:
        return "kept"
    if acc_forget <= acc_pre + opts.pretrained_margin:
        return "to_pretrained"
    return "partial"


def task_metrics(joined, opts: AnalysisOptions):
    """One row per (task, split): n, accuracies with CIs, gap, ratios, behaviour, mean confidences."""
    import pandas as pd

    rows = []
    for (task, split), g in joined.groupby(["task", "split"], sort=True):
        n = len(g)
        chance = float((1.0 / g["n_choices"]).mean())  # 0.5 for the binarized suite
        row = {"task": task, "split": split, "n": n, "chance": chance}
        for phase in ("pretrained", "finetuned", "forget"):
            acc, lo, hi = accuracy_ci(int(g[f"correct_{phase}"].sum()), n, opts.confidence_level)
            row |= {f"acc_{phase}": acc, f"acc_{phase}_lo": lo, f"acc_{phase}_hi": hi,
                    f"confidence_{phase}": float(g[f"p_gold_{phase}"].mean())}
        ft, fg, pre = row["acc_finetuned"], row["acc_forget"], row["acc_pretrained"]
        row["forget_gap"] = forget_gap(fg, chance)
        row["forget_ratio"] = forget_ratio(ft, fg, chance=chance, min_denominator=opts.min_denominator)
        row["forget_ratio_flipped"] = forget_ratio_flipped(ft, fg, min_denominator=opts.min_denominator)
        row["behaviour"] = behaviour(pre, ft, fg, opts)
        row["at_chance"] = abs(fg - chance) <= opts.chance_margin
        rows.append(row)
    return pd.DataFrame(rows)
