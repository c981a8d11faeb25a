"""Statistics, metrics and the cross-task matrix against scipy called directly, on planted and null data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as ss
from scipy.cluster.hierarchy import leaves_list, linkage

from lm_forget.analysis import matrix as mx
from lm_forget.analysis import metrics, stats
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.errors import ConfigError, DataError

FAST = stats.TestSettings(n_bootstrap=400, n_permutations=400, seed=0)


def _planted(n: int, rho: float, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    return x, y


def test_correlations_match_scipy_and_planted_effect_inside_ci():
    x, y = _planted(60, 0.6, seed=1)
    rows = {r["method"]: r for r in stats.correlate(x, y, FAST)}
    for method, fn in (("pearson", ss.pearsonr), ("spearman", ss.spearmanr), ("kendall", ss.kendalltau)):
        ref = fn(x, y)
        assert rows[method]["statistic"] == pytest.approx(ref.statistic, abs=1e-12)
        assert rows[method]["p_analytic"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert rows[method]["ci_low"] < ref.statistic < rows[method]["ci_high"]
        assert rows[method]["p"] < 0.01  # the permutation p
    assert rows["pearson"]["ci_low"] < 0.6 < rows["pearson"]["ci_high"]  # planted rho recovered
    ref = ss.bootstrap((x, y), lambda a, b: ss.pearsonr(a, b).statistic, paired=True, vectorized=False,
                       n_resamples=400, method="BCa", rng=np.random.default_rng(0))
    assert rows["pearson"]["ci_low"] == pytest.approx(ref.confidence_interval.low)
    assert rows["pearson"]["ci_method"] == "BCa"


@pytest.mark.e2e
def test_null_data_mostly_not_significant():
    settings = stats.TestSettings(n_bootstrap=10, n_permutations=199, seed=0)
    rng = np.random.default_rng(7)
    p_analytic, p_perm = [], []
    for _ in range(200):
        x, y = rng.standard_normal(15), rng.standard_normal(15)
        row = stats.correlate(x, y, settings, methods=("pearson",))[0]
        p_analytic.append(row["p_analytic"])
        p_perm.append(row["p"])
    assert np.mean(np.array(p_analytic) > 0.05) >= 0.9
    assert np.mean(np.array(p_perm) > 0.05) >= 0.9


def test_small_n_is_skipped_or_warned():
    skipped = stats.correlate([1, 2, 3], [3, 1, 2], FAST)
    assert all(r["note"].startswith("skipped") and math.isnan(r["p"]) for r in skipped)
    warned = stats.correlate(*_planted(6, 0.5, 3), FAST)
    assert all("small n=6" in r["note"] and math.isfinite(r["p"]) for r in warned)
    const = stats.correlate([1, 1, 1, 1, 1], [1, 2, 3, 4, 5], FAST)
    assert const[0]["note"] == "skipped: a variable is constant"


def test_binary_association_matches_scipy():
    rng = np.random.default_rng(2)
    v = rng.standard_normal(200)
    b = (v + rng.standard_normal(200)) < 0  # low predictor -> forgotten
    rows = {r["method"]: r for r in stats.binary_association(b, v, FAST)}
    assert rows["point_biserial"]["statistic"] == pytest.approx(ss.pointbiserialr(b, v).statistic)
    assert rows["point_biserial"]["ci_high"] < 0
    u = ss.mannwhitneyu(v[b], v[~b])
    assert rows["auc"]["statistic"] == pytest.approx(u.statistic / (b.sum() * (~b).sum()))
    assert rows["auc"]["p"] == pytest.approx(u.pvalue)
    few = stats.binary_association([True, False, False], [1.0, 2.0, 3.0], FAST)
    assert few[0]["note"].startswith("skipped")


def test_holm_and_bh():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # Holm by hand: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, running max
    assert stats.holm(p)[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(stats.holm(p)[4])
    assert stats.benjamini_hochberg(p)[:4] == pytest.approx(ss.false_discovery_control(p[:4], method="bh"))
    table = stats.correct_family(pd.DataFrame({"p": p}))
    assert {"p_holm", "p_bh"} <= set(table.columns)


def test_metrics_definitions():
    assert metrics.forget_gap(0.62) == pytest.approx(0.12)
    assert metrics.forget_ratio(0.9, 0.6) == pytest.approx(0.75)
    assert metrics.forget_ratio_flipped(0.9, 0.6) == pytest.approx(0.3 / 0.8)
    assert math.isnan(metrics.forget_ratio(0.52, 0.5))
    acc, lo, hi = metrics.accuracy_ci(30, 40)
    ci = ss.binomtest(30, 40).proportion_ci(method="wilson")
    assert (acc, lo, hi) == pytest.approx((0.75, ci.low, ci.high))
    opts = AnalysisOptions()
    assert metrics.behaviour(0.6, 0.9, 0.89, opts) == "kept"
    assert metrics.behaviour(0.6, 0.9, 0.75, opts) == "partial"
    assert metrics.behaviour(0.6, 0.9, 0.55, opts) == "to_pretrained"
    with pytest.raises(ConfigError, match="outcome"):
        AnalysisOptions(outcome="nope")


def _planted_matrix():
    tasks = [f"forget_t{i}" for i in range(6)]
    col_effect = np.array([0.1, 0.15, 0.5, 0.55, 0.9, 0.95])  # the evaluated task dominates
    row_effect = np.linspace(-0.05, 0.05, 6)
    rng = np.random.default_rng(0)
    values = col_effect[None, :] + row_effect[:, None] + 0.01 * rng.standard_normal((6, 6))
    return pd.DataFrame(values, index=tasks, columns=tasks)


def test_matrix_upgma_matches_scipy_and_shares():
    m = _planted_matrix()
    rows, cols, row_link, _ = mx.upgma_order(m)
    ref = linkage(m.to_numpy(), method="average", metric="euclidean")
    assert np.allclose(row_link, ref)
    assert rows == [m.index[i] for i in leaves_list(ref)]
    assert {frozenset(cols[:2]), frozenset(cols[2:4]), frozenset(cols[4:])} == {
        frozenset(m.columns[[0, 1]]), frozenset(m.columns[[2, 3]]), frozenset(m.columns[[4, 5]])}
    shares = mx.variance_shares(m)
    assert shares["col_share"] > 0.9 > shares["row_share"]
    assert shares["row_share"] + shares["col_share"] + shares["residual_share"] == pytest.approx(1)


def test_matrix_csv_merge_and_ratio(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    pd.DataFrame({"trained_task": ["x", "x"], "eval_task": ["x", "y"], "acc_forget": [0.5, 0.8]}).to_csv(
        a / "matrix.csv", index=False)
    pd.DataFrame({"trained_task": ["y", "y"], "eval_task": ["x", "y"], "acc_forget": [0.7, 0.6],
                  "acc_finetuned": [0.9, 0.9]}).to_csv(b / "matrix.csv", index=False)
    path = mx.merge_matrix([a, b], tmp_path / "merged")
    table = mx.read_matrix_dir(path.parent)
    ratios, _ = mx.ratio_matrix(table, {"x": 0.9, "y": 0.9})
    assert ratios.loc["x", "x"] == pytest.approx(1.0)
    assert ratios.loc["y", "y"] == pytest.approx(0.75)
    with pytest.raises(DataError, match="appears in two shards"):
        mx.merge_matrix([a, a], tmp_path / "dup")
    with pytest.raises(DataError, match="no fine-tuned accuracy"):
        mx.ratio_matrix(table, {"x": 0.9})


def test_an_undefined_correlation_interval_says_why():
    """Four tasks: ~1 in 64 resamples draws one task four times (a constant variable, no correlation), so no
    bootstrap interval exists; the method says how many resamples and that more points define it. The finding's
    line carries the reason. Forty points: an interval."""
    from lm_forget.analysis.report import why_undefined

    settings = stats.TestSettings(n_bootstrap=500)
    x, y = np.array([0.1, 0.4, 0.2, 0.9]), np.array([0.3, 0.5, 0.1, 0.8])
    lo, hi, how = stats.bootstrap_ci("spearman", x, y, settings)
    assert math.isnan(lo) and math.isnan(hi)
    assert how.startswith("undefined: ") and "of 500 bootstrap resamples of the 4 points" in how
    assert why_undefined({"ci_low": lo, "ci_method": how}).startswith(" (") and "more points" in how
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    lo, hi, how = stats.bootstrap_ci("spearman", x, x + rng.normal(size=40), settings)
    assert lo < hi and how in ("BCa", "percentile")
    assert why_undefined({"ci_low": lo, "ci_method": how}) == ""
