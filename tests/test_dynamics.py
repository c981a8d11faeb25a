"""Learned-at / forgotten-at on planted trajectories whose per-doc confidence is known; order statistics."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lm_forget.analysis.dynamics import DynamicsOptions, analyze_dynamics, crossing_step, doc_orders, order_stats
from lm_forget.train.dynamics import interval_steps

STEPS = list(range(0, 11))


def _trajectory(task: str, doc: str, phase: str, values: list[float]) -> list[dict]:
    return [{"task": task, "doc_id": doc, "phase": phase, "step": s, "p_gold": v}
            for s, v in zip(STEPS, values, strict=True)]


def test_crossings_are_first_step_that_stays_past_the_threshold():
    up = [0.5, 0.55, 0.7, 0.58, 0.61, 0.65, 0.9, 0.9, 0.9, 0.9, 0.9]  # dips below at step 3: learned at 4
    assert crossing_step(STEPS, up, 0.6, above=True) == 4
    assert crossing_step(STEPS, [0.5] * 11, 0.6, above=True) is None  # never learned
    assert crossing_step(STEPS, [0.6] * 11, 0.6, above=True) == 0  # at the threshold counts as learned
    down = [0.9, 0.5, 0.8, 0.7, 0.59, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2]
    assert crossing_step(STEPS, down, 0.6, above=False) == 4
    assert crossing_step(STEPS, [0.9] * 11, 0.6, above=False) is None  # never forgotten
    assert crossing_step(list(reversed(STEPS)), list(reversed(down)), 0.6, above=False) == 4  # order-free


def _planted(task: str, n: int, anti: bool) -> list[dict]:
    """Doc i is learned at step 1 + i % 10 and forgotten at 10 - i % 10 (anti) or 1 + i % 10."""
    rows = []
    for i in range(n):
        learn = 1 + i % 10
        forget = 10 - i % 10 if anti else learn
        rows += _trajectory(task, f"{task}/{i}", "finetune", [0.9 if s >= learn else 0.4 for s in STEPS])
        rows += _trajectory(task, f"{task}/{i}", "forget", [0.3 if s >= forget else 0.8 for s in STEPS])
    return rows


def test_planted_orders_and_statistics(tmp_path):
    never = _trajectory("big", "big/never", "finetune", [0.4] * 11) + \
        _trajectory("big", "big/never", "forget", [0.4] * 11)
    kept = _trajectory("big", "big/kept", "finetune", [0.9] * 11) + _trajectory("big", "big/kept", "forget", [0.9] * 11)
    frame = pd.DataFrame(_planted("big", 120, anti=True) + _planted("small", 30, anti=False) + never + kept)
    orders = doc_orders(frame).set_index("doc_id")
    assert orders.loc["big/7", "learned_at"] == 8 and orders.loc["big/7", "forgotten_at"] == 3
    assert math.isnan(orders.loc["big/never", "learned_at"])
    assert orders.loc["big/kept", "learned_at"] == 0 and math.isnan(orders.loc["big/kept", "forgotten_at"])

    stats = order_stats(orders.reset_index(), DynamicsOptions(n_bootstrap=200)).set_index("task")
    assert stats.loc["big", "spearman"] == pytest.approx(-1.0)  # learned first, forgotten last
    assert stats.loc["big", "n_qualifying"] == 120 and stats.loc["big", "in_pooled"]
    assert stats.loc["big", "ci_low"] <= -0.99
    assert stats.loc["big", "share_never_learned"] == pytest.approx(1 / 122)
    assert stats.loc["big", "share_never_forgotten"] == pytest.approx(1 / 121)
    assert stats.loc["small", "spearman"] == pytest.approx(1.0)
    assert not stats.loc["small", "in_pooled"] and "fewer than 100" in stats.loc["small", "note"]
    assert stats.loc["pooled", "n_qualifying"] == 120  # the small task is reported, not pooled
    assert stats.loc["pooled", "spearman"] == pytest.approx(-1.0)
    # a configurable minimum: at 20 the small task enters the pool and the pooled rho moves off -1
    loose = order_stats(orders.reset_index(), DynamicsOptions(min_docs=20, n_bootstrap=200)).set_index("task")
    assert loose.loc["pooled", "n_qualifying"] == 150 and loose.loc["pooled", "spearman"] > -0.9
    # the interval's level is the study's confidence_level: at 50% it lies inside the 95% one
    wide, narrow = (order_stats(orders.reset_index(), DynamicsOptions(min_docs=20, n_bootstrap=400,
                                                                       confidence_level=level)).set_index("task")
                    for level in (0.95, 0.5))
    assert wide.loc["pooled", "ci_low"] < narrow.loc["pooled", "ci_low"] < narrow.loc["pooled", "ci_high"] \
        < wide.loc["pooled", "ci_high"]

    paths = analyze_dynamics(frame, tmp_path / "dyn", DynamicsOptions(n_bootstrap=50))
    assert all(p.is_file() for p in paths.values())


def test_no_pooled_statistic_without_enough_docs():
    frame = pd.DataFrame(_planted("small", 30, anti=True))
    stats = order_stats(doc_orders(frame), DynamicsOptions(n_bootstrap=50)).set_index("task")
    assert math.isnan(stats.loc["pooled", "spearman"]) and "undefined" in stats.loc["pooled", "note"]


def test_interval_in_steps_or_epoch_fractions():
    assert interval_steps(5, 100, 1.0) == 5
    assert interval_steps(0.1, 100, 1.0) == 10
    assert interval_steps(0.1, 200, 2.0) == 10
    with pytest.raises(ValueError):
        interval_steps(0, 10, 1.0)


def test_an_undefined_interval_says_why():
    """Orders with few distinct snapshot steps: some bootstrap resamples hold one learned-at only (no rank
    correlation), so the percentile interval is undefined; the row says so, how often and what to change."""
    learned = [2] * 97 + [5, 6, 7]  # 97 % of docs learned at one snapshot: a resample is constant with p ~ 5 %
    forgotten = [i % 9 for i in range(100)]
    orders = pd.DataFrame({"task": "tied", "doc_id": [f"tied/{i}" for i in range(100)],
                           "learned_at": learned, "forgotten_at": forgotten})
    row = order_stats(orders, DynamicsOptions(n_bootstrap=400)).set_index("task").loc["tied"]
    assert math.isfinite(row["spearman"]) and math.isnan(row["ci_low"])
    assert "interval undefined:" in row["note"] and "of 400 bootstrap resamples" in row["note"]
    assert "dynamics_every" in row["note"]
    spread = orders.assign(learned_at=[i % 7 for i in range(100)])  # many distinct steps: the interval exists
    row = order_stats(spread, DynamicsOptions(n_bootstrap=400)).set_index("task").loc["tied"]
    assert math.isfinite(row["ci_low"]) and "interval undefined" not in row["note"]
