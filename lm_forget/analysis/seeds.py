"""Across-seed summaries: the mean and Student-t interval of one outcome over a study's seeds.

The interval is :func:`scipy.stats.t.interval` around the mean with the standard error
:func:`scipy.stats.sem`: with one seed there is no interval (NaN), with identical values it is the mean itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def t_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of ``values`` (NaN dropped): the ``level`` Student-t interval of the mean."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    mean = float(values.mean()) if len(values) else math.nan
    if len(values) < 2:
        return mean, math.nan, math.nan
    sem = stats.sem(values)
    if not sem > 0:
        return mean, mean, mean
    low, high = stats.t.interval(level, len(values) - 1, loc=mean, scale=sem)
    return mean, low, high


def seed_table(table: Any, outcome: str, level: float = 0.95) -> Any:
    """One row per ([method,] num_examples, task, split) of ``table`` (one row per seed): n_seeds, the mean of
    ``outcome`` and its t-interval (``ci_low``, ``ci_high``)."""
    import pandas as pd

    by_method = "method" in table.columns
    rows = []
    for keys, group in table.groupby(["method"] * by_method + ["num_examples", "task", "split"]):
        *method_key, n, task, split = keys
        values = group[outcome].dropna().to_numpy(dtype=float)
        mean, low, high = t_interval(values, level)
        rows.append({**dict(zip(["method"], method_key, strict=False)),
                     "num_examples": n, "task": task, "split": split, "n_seeds": len(values), f"{outcome}_mean": mean,
                     "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)
