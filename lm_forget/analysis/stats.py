"""Statistics, all from ``scipy.stats``: correlations with p-values, bootstrap CIs, permutation tests,
example-level point-biserial / AUC tests, and Holm / Benjamini-Hochberg correction.

Only Holm is written here: scipy has Benjamini-Hochberg (``false_discovery_control``) but no Holm.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

METHODS = ("pearson", "spearman", "kendall")


@dataclass(frozen=True)
class TestSettings:
    """Resampling and small-n settings shared by every test of one analysis."""

    n_bootstrap: int = 2000
    n_permutations: int = 2000
    confidence_level: float = 0.95
    min_n_test: int = 4
    min_n_warn: int = 10
    seed: int = 0


def _corr(method: str, x, y) -> tuple[float, float]:
    from scipy import stats

    fn = {"pearson": stats.pearsonr, "spearman": stats.spearmanr, "kendall": stats.kendalltau}[method]
    res = fn(x, y)
    return float(res.statistic), float(res.pvalue)


def _statistic(method: str):
    """The correlation as a resampling statistic; vectorized (``axis``) for Pearson and Spearman."""
    from scipy import stats

    def pearson(x, y, axis=-1):
        with warnings.catch_warnings():  # constant resamples give NaN, which the resamplers handle
            warnings.simplefilter("ignore")
            return stats.pearsonr(x, y, axis=axis).statistic

    def spearman(x, y, axis=-1):
        return pearson(stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis), axis=axis)

    def kendall(x, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return stats.kendalltau(x, y).statistic

    return {"pearson": pearson, "spearman": spearman, "kendall": kendall}[method]


def _vectorized(method: str) -> bool:
    return method != "kendall"


def bootstrap_ci(method: str, x, y, settings: TestSettings) -> tuple[float, float, str]:
    """Paired ``scipy.stats.bootstrap`` CI of the correlation: BCa, percentile when BCa is degenerate."""
    from scipy import stats

    for ci_method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = stats.bootstrap((x, y), _statistic(method), paired=True, vectorized=_vectorized(method),
                                      n_resamples=settings.n_bootstrap, method=ci_method,
                                      confidence_level=settings.confidence_level,
                                      rng=np.random.default_rng(settings.seed))
            except Exception:  # degenerate BCa (e.g. all resamples equal): try percentile
                continue
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(lo) and math.isfinite(hi):
            return lo, hi, ci_method
    return math.nan, math.nan, "none"


def permutation_p(method: str, x, y, settings: TestSettings) -> float:
    """Two-sided ``scipy.stats.permutation_test`` p-value of the correlation (pairings; exact for small n)."""
    from scipy import stats

    y = np.asarray(y)
    stat = _statistic(method)
    if _vectorized(method):
        def fn(xs, axis=-1):
            return stat(xs, y, axis=axis)
    else:
        def fn(xs):
            return stat(xs, y)
    res = stats.permutation_test((np.asarray(x),), fn, permutation_type="pairings", vectorized=_vectorized(method),
                                 n_resamples=settings.n_permutations, alternative="two-sided",
                                 rng=np.random.default_rng(settings.seed))
    return float(res.pvalue)


def small_n_note(n: int, settings: TestSettings) -> str:
    """Why a test with n observations means little (empty when n is enough)."""
    if n < settings.min_n_test:
        return f"skipped: n={n} < {settings.min_n_test}"
    if n < settings.min_n_warn:
        return f"small n={n}: p-values and CIs are unreliable"
    return ""


def correlate(x, y, settings: TestSettings, *, methods=METHODS) -> list[dict]:
    """Pearson, Spearman and Kendall of (x, y) with p-value, permutation p and bootstrap CI; NaN pairs dropped."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    note = small_n_note(n, settings)
    out = []
    for method in methods:
        row = {"method": method, "n": n, "statistic": math.nan, "p": math.nan, "p_perm": math.nan,
               "ci_low": math.nan, "ci_high": math.nan, "ci_method": "", "note": note}
        if n >= settings.min_n_test and np.ptp(x) > 0 and np.ptp(y) > 0:
            row["statistic"], row["p"] = _corr(method, x, y)
            row["p_perm"] = permutation_p(method, x, y, settings)
            row["ci_low"], row["ci_high"], row["ci_method"] = bootstrap_ci(method, x, y, settings)
        elif n >= settings.min_n_test:
            row["note"] = "skipped: a variable is constant"
        out.append(row)
    return out


def binary_association(outcome, predictor, settings: TestSettings, *, min_per_group: int = 5) -> list[dict]:
    """Example level: a binary outcome (forgotten) vs a predictor. Point-biserial r and AUC (Mann-Whitney U).

    AUC = P(predictor of a forgotten doc > predictor of a kept doc); 0.5 = no association.
    """
    from scipy import stats

    b = np.asarray(outcome, dtype=bool)
    v = np.asarray(predictor, dtype=float)
    keep = np.isfinite(v)
    b, v = b[keep], v[keep]
    n1, n0 = int(b.sum()), int((~b).sum())
    base = {"n": len(v), "n_forgotten": n1, "n_kept": n0, "statistic": math.nan, "p": math.nan,
            "p_perm": math.nan, "ci_low": math.nan, "ci_high": math.nan, "ci_method": "", "note": ""}
    if min(n1, n0) < min_per_group or np.ptp(v) == 0:
        base["note"] = f"skipped: {n1} forgotten / {n0} kept docs (need {min_per_group} of each, non-constant)"
        return [base | {"method": "point_biserial"}, base | {"method": "auc"}]
    pb = stats.pointbiserialr(b.astype(float), v)
    lo, hi, how = bootstrap_ci("pearson", b.astype(float), v, settings)
    u = stats.mannwhitneyu(v[b], v[~b], alternative="two-sided")
    auc = float(u.statistic) / (n1 * n0)
    return [
        base | {"method": "point_biserial", "statistic": float(pb.statistic), "p": float(pb.pvalue),
                "ci_low": lo, "ci_high": hi, "ci_method": how},
        base | {"method": "auc", "statistic": auc, "p": float(u.pvalue)},
    ]


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN); scipy has no Holm."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def benjamini_hochberg(pvalues) -> np.ndarray:
    """BH adjusted p-values via ``scipy.stats.false_discovery_control`` (NaN stays NaN)."""
    from scipy.stats import false_discovery_control

    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = false_discovery_control(p[ok], method="bh")
    return out


def correct_family(table, *, column: str = "p"):
    """Add ``p_holm`` and ``p_bh`` columns, correcting across every row of ``table`` (one family)."""
    table = table.copy()
    table["p_holm"] = holm(table[column].to_numpy())
    table["p_bh"] = benjamini_hochberg(table[column].to_numpy())
    return table
