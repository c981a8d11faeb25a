"""Multi-seed studies: the across-seed summary is the mean and a t-interval of each task's outcome."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from lm_forget.run.steps.analyze import seed_summary


def test_seed_summary_mean_and_t_interval(tmp_path):
    values = {0: 0.2, 1: 0.5, 2: 0.8}
    reports = {}
    for seed, ratio in values.items():
        folder = tmp_path / f"n100-s{seed}"
        folder.mkdir()
        pd.DataFrame([{"task": "forget_a", "split": "test", "forget_ratio": ratio},
                      {"task": "forget_b", "split": "test", "forget_ratio": 0.1 * seed}]).to_csv(
            folder / "metrics.csv", index=False)
        reports[(100, seed)] = folder
    path = seed_summary(reports, tmp_path, "forget_ratio")
    table = pd.read_csv(path).set_index("task")
    row = table.loc["forget_a"]
    assert row["n_seeds"] == 3 and row["forget_ratio_mean"] == pytest.approx(0.5)
    low, high = stats.t.interval(0.95, 2, loc=0.5, scale=stats.sem([0.2, 0.5, 0.8]))
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((low, high))
    assert (tmp_path / "seeds_summary.md").read_text().count("| forget_") == 2  # one row per task


def test_seed_summary_one_seed_has_no_interval(tmp_path):
    folder = tmp_path / "n100-s0"
    folder.mkdir()
    pd.DataFrame([{"task": "forget_a", "split": "test", "forget_ratio": 0.3}]).to_csv(folder / "metrics.csv")
    table = pd.read_csv(seed_summary({(100, 0): folder}, tmp_path, "forget_ratio"))
    assert table["forget_ratio_mean"][0] == pytest.approx(0.3) and math.isnan(table["ci95_low"][0])
