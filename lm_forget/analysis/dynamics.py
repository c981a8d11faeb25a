"""Learning order vs forgetting order, from per-doc confidence trajectories (``dynamics.parquet``).

For each doc: *learned at* = the first fine-tuning step from which its confidence P(gold vs distractor)
is >= ``threshold`` at every later scored step (default 0.6, the threshold of the secondary reading of
the paper); *forgotten at* = the first forgetting step from which it stays < ``threshold``. A doc never
above (below) the threshold for good is "never learned" ("never forgotten"). Per task: the Spearman rank
correlation of learned-at vs forgotten-at over the docs that have both, with a bootstrap interval
(``scipy.stats.bootstrap``, paired, at the study's ``confidence_level``), the share never learned / never
forgotten, and a figure. Tasks with
fewer than ``min_docs`` qualifying docs are reported but left out of the pooled statistic.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THRESHOLD = 0.6
MIN_DOCS = 100


@dataclass(frozen=True)
class DynamicsOptions:
    """Settings of the order analysis.

    Attributes:
        threshold: confidence a doc must stay at or above (learned) / below (forgotten).
        min_docs: qualifying docs (learned and forgotten) a task needs to enter the pooled statistic.
        confidence_level: level of the Spearman interval (the study's ``analysis.options.confidence_level``).
        n_bootstrap: bootstrap resamples of the Spearman interval (the study's ``n_bootstrap``).
        seed: bootstrap seed (the study's ``seed``).
    """

    threshold: float = THRESHOLD
    min_docs: int = MIN_DOCS
    confidence_level: float = 0.95
    n_bootstrap: int = 2000
    seed: int = 0


def crossing_step(steps: list[int], values: list[float], threshold: float, *, above: bool) -> int | None:
    """First step from which every later value is >= threshold (``above``) or < threshold; None: never."""
    order = sorted(range(len(steps)), key=lambda i: steps[i])
    found = None
    for i in reversed(order):
        ok = values[i] >= threshold if above else values[i] < threshold
        if not ok:
            break
        found = steps[i]
    return found


def doc_orders(frame: Any, threshold: float = THRESHOLD, *, learn_phase: str = "finetune",
               forget_phase: str = "forget") -> Any:
    """One row per (task, doc_id): ``learned_at`` and ``forgotten_at`` (NaN: never)."""
    import pandas as pd

    rows = []
    for (task, doc), group in frame.groupby(["task", "doc_id"], sort=True):
        row: dict[str, Any] = {"task": task, "doc_id": doc}
        for phase, name, above in ((learn_phase, "learned_at", True), (forget_phase, "forgotten_at", False)):
            part = group[group["phase"] == phase]
            step = crossing_step(part["step"].tolist(), part["p_gold"].tolist(), threshold, above=above) \
                if len(part) else None
            row[name] = math.nan if step is None else float(step)
            row[f"{name.split('_')[0]}_scored"] = bool(len(part))
        rows.append(row)
    return pd.DataFrame(rows)


def _spearman_ci(x, y, options: DynamicsOptions) -> tuple[float, float, float, str]:
    """Spearman rho, its percentile bootstrap interval and, when that interval is undefined, why."""
    import numpy as np
    from scipy import stats

    if len(x) < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return math.nan, math.nan, math.nan, ""  # undefined: too few docs, or one order is constant
    rho = float(stats.spearmanr(x, y).statistic)
    with warnings.catch_warnings():  # a resample with a constant order has no rank correlation (NaN)
        warnings.simplefilter("ignore")
        res = stats.bootstrap((np.asarray(x), np.asarray(y)), lambda a, b: stats.spearmanr(a, b).statistic,
                              paired=True, vectorized=False, n_resamples=options.n_bootstrap, method="percentile",
                              confidence_level=options.confidence_level,
                              random_state=np.random.default_rng(options.seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    why = ""
    if not (math.isfinite(low) and math.isfinite(high)):
        bad = int(np.isnan(res.bootstrap_distribution).sum())
        why = (f"interval undefined: {bad} of {options.n_bootstrap} bootstrap resamples drew a constant learned-at or "
               f"forgotten-at (only {np.unique(x).size} and {np.unique(y).size} distinct snapshot steps: score the "
               "dynamics more often, dynamics_every, for fewer ties)")
    return rho, low, high, why


def order_stats(orders: Any, options: DynamicsOptions = DynamicsOptions()) -> Any:
    """Per task (and ``pooled`` over tasks with >= ``min_docs`` qualifying docs): Spearman + CI, shares."""
    import pandas as pd

    rows = []
    pooled = []
    for task, group in orders.groupby("task", sort=True):
        both = group.dropna(subset=["learned_at", "forgotten_at"])
        rho, low, high, why = _spearman_ci(both["learned_at"], both["forgotten_at"], options) if len(both) >= 2 \
            else (math.nan, math.nan, math.nan, "")
        learned = group["learned_at"].notna()
        rows.append({"task": task, "n_docs": len(group), "n_qualifying": len(both), "spearman": rho,
                     "ci_low": low, "ci_high": high,
                     "share_never_learned": float((~learned).mean()),
                     "share_never_forgotten": float(group.loc[learned, "forgotten_at"].isna().mean())
                     if learned.any() else math.nan,
                     "in_pooled": len(both) >= options.min_docs,
                     "note": "; ".join(n for n in (why, "" if len(both) >= options.min_docs else
                                                   f"fewer than {options.min_docs} qualifying docs: excluded from "
                                                   "pooled") if n)})
        if len(both) >= options.min_docs:
            pooled.append(both)
    if pooled:
        both = pd.concat(pooled)
        rho, low, high, why = _spearman_ci(both["learned_at"], both["forgotten_at"], options)
        rows.append({"task": "pooled", "n_docs": len(both), "n_qualifying": len(both), "spearman": rho,
                     "ci_low": low, "ci_high": high, "share_never_learned": math.nan,
                     "share_never_forgotten": math.nan, "in_pooled": True,
                     "note": "; ".join(n for n in (f"{len(pooled)} task(s)", why) if n)})
    else:
        rows.append({"task": "pooled", "n_docs": 0, "n_qualifying": 0, "spearman": math.nan, "ci_low": math.nan,
                     "ci_high": math.nan, "share_never_learned": math.nan, "share_never_forgotten": math.nan,
                     "in_pooled": False, "note": f"undefined: no task has {options.min_docs} qualifying docs"})
    return pd.DataFrame(rows)


def plot_orders(orders: Any, out: Path) -> Path:
    """Learned-at vs forgotten-at scatter, one panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted(orders["task"].unique())
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(3.2 * max(1, len(tasks)), 3.0), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=False):
        both = orders[(orders["task"] == task)].dropna(subset=["learned_at", "forgotten_at"])
        ax.scatter(both["learned_at"], both["forgotten_at"], s=8, alpha=0.6)
        ax.set_title(f"{task} (n={len(both)})", fontsize=8)
        ax.set_xlabel("learned at (fine-tune step)")
        ax.set_ylabel("forgotten at (forget step)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def analyze_dynamics(frame: Any, out: Path, options: DynamicsOptions = DynamicsOptions()) -> dict[str, Path]:
    """Write ``orders.csv``, ``order_stats.csv`` and ``orders.png`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    orders = doc_orders(frame, options.threshold)
    orders.to_csv(out / "orders.csv", index=False)
    order_stats(orders, options).to_csv(out / "order_stats.csv", index=False)
    return {"orders": out / "orders.csv", "stats": out / "order_stats.csv",
            "figure": plot_orders(orders, out / "orders.png")}
