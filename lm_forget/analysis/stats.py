"""Statistics, all from ``scipy.stats``: correlations with permutation p-values (exact for small n), bootstrap
CIs, the power of the permutation test, example-level point-biserial / AUC tests, and Holm / BH correction.

Task-level p-values are permutation p-values (``scipy.stats.permutation_test``: exact when n! <= the resample
budget, Monte Carlo otherwise), never scipy's analytic (t / normal) approximation, which is invalid at the
n of a task-level study (n = 4 tasks gives analytic p = 0 for a perfect rank correlation; the exact p cannot
go below 2/4! = 1/12). Only Holm is written here: scipy has Benjamini-Hochberg but no Holm.
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
    n_power: int = 2000


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

    def kendall(x, y, axis=-1):
        # tau-b (scipy's default) over all pairs, vectorised over resamples: O(n^2) per row, fine for task-level n
        x, y = (np.moveaxis(np.asarray(v, dtype=float), axis, -1) for v in (x, y))
        x, y = np.broadcast_arrays(x, y)
        if x.shape[-1] > 60:  # O(n^2) memory per row: loop over scipy's O(n log n) tau-b instead
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                flat = [stats.kendalltau(a, b).statistic for a, b in zip(x.reshape(-1, x.shape[-1]),
                                                                        y.reshape(-1, y.shape[-1]), strict=True)]
            return np.asarray(flat, dtype=float).reshape(x.shape[:-1])
        i, j = np.triu_indices(x.shape[-1], 1)
        sx, sy = np.sign(x[..., i] - x[..., j]), np.sign(y[..., i] - y[..., j])
        with np.errstate(divide="ignore", invalid="ignore"):
            return (sx * sy).sum(-1) / np.sqrt((sx != 0).sum(-1) * (sy != 0).sum(-1))

    return {"pearson": pearson, "spearman": spearman, "kendall": kendall}[method]


def _vectorized(method: str) -> bool:
    return True


def bootstrap_ci(method: str, x, y, settings: TestSettings) -> tuple[float, float, str]:
    """Paired ``scipy.stats.bootstrap`` CI of the correlation: BCa, percentile when BCa is degenerate.

    When neither gives an interval, the method is ``undefined: <why>`` (e.g. how many resamples of few points
    drew a constant variable, which has no correlation)."""
    from scipy import stats

    constant = None
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
        constant = int(np.isnan(np.asarray(res.bootstrap_distribution, dtype=float)).sum())
    if constant:
        return math.nan, math.nan, (f"undefined: {constant} of {settings.n_bootstrap} bootstrap resamples of the "
                                    f"{len(x)} points drew a constant variable (no correlation); more points "
                                    "define it")
    return math.nan, math.nan, "undefined"


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


def min_attainable_p(n: int, settings: TestSettings) -> float:
    """Smallest two-sided permutation p-value a correlation of n points can reach (2/n! exact, else
    1/(resamples + 1))."""
    if n < 2:
        return math.nan
    exact = math.factorial(n) <= settings.n_permutations
    return 2 / math.factorial(n) if exact else 1 / (settings.n_permutations + 1)


def _rank_corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Spearman of two (k, n) arrays (ranks, then Pearson)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra, rb = ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True)
    return (ra * rb).sum(axis=1) / np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))


def spearman_power(n: int, rho: float, alpha: float, settings: TestSettings) -> float:
    """Power of the two-sided Spearman permutation test at level ``alpha`` to detect a population Spearman
    ``rho`` with n tasks (Gaussian copula; Pearson r = 2 sin(pi rho / 6)); simulated, reproducible."""
    import itertools

    from lm_forget.analysis.uncertainty import stable_rng

    if n < 3:
        return math.nan
    rng = stable_rng("power", settings.seed, n, rho)
    base = np.arange(n, dtype=float)
    exact = math.factorial(n) <= settings.n_permutations
    perms = (np.array(list(itertools.permutations(range(n))), dtype=float) if exact
             else rng.permuted(np.tile(base, (settings.n_permutations, 1)), axis=1))
    null = np.sort(np.abs(_rank_corr_rows(np.broadcast_to(base, perms.shape), perms)))
    r = 2 * math.sin(math.pi * rho / 6)
    z = rng.standard_normal((settings.n_power, 2, n))
    x, y = z[:, 0], r * z[:, 0] + math.sqrt(1 - r * r) * z[:, 1]
    obs = np.abs(_rank_corr_rows(x, y))
    count = len(null) - np.searchsorted(null, obs - 1e-12, side="left")  # null |rho| >= observed
    p = count / len(null) if exact else (count + 1) / (len(null) + 1)
    return float(np.mean(p <= alpha))


def correlate(x, y, settings: TestSettings, *, methods=METHODS) -> list[dict]:
    """Pearson, Spearman and Kendall of (x, y) with permutation p (``p``; exact for small n), scipy's analytic
    p (``p_analytic``, for reference only) and bootstrap CI; NaN pairs dropped."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    note = small_n_note(n, settings)
    out = []
    for method in methods:
        row = {"method": method, "n": n, "statistic": math.nan, "p": math.nan, "p_analytic": math.nan,
               "ci_low": math.nan, "ci_high": math.nan, "ci_method": "", "note": note}
        if n >= settings.min_n_test and np.ptp(x) > 0 and np.ptp(y) > 0:
            row["statistic"], row["p_analytic"] = _corr(method, x, y)
            row["p"] = permutation_p(method, x, y, settings)
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
