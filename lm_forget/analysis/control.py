"""A baseline for example-level claims: a control forget cell (no targeted forgetting, e.g. continued
training on gold labels), scored on the same docs.

Docs near the decision boundary flip under *any* further training, so "low confidence -> forgotten" holds
even when forgetting is pure noise. The control gives the flip rate by confidence decile without targeted
forgetting; the example-level association is reported as its excess over the control (AUC difference, paired
bootstrap over docs: both outcomes of a doc stay together in every resample).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lm_forget.analysis.metrics import accuracy_ci
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.uncertainty import percentile_ci, resample_indices, stable_rng
from lm_forget.errors import DataError

NO_BASELINE = ("Example-level associations have no baseline (no --control): docs near the decision boundary "
               "flip under any further training, so 'low confidence -> forgotten' is expected even without "
               "targeted forgetting. They must not be read causally.")


def join_control(joined, folder: Path):
    """``joined`` with ``correct_control`` / ``forgotten_control`` from the control cell's lm-eval folder."""
    from lm_forget.analysis.join import KEY
    from lm_forget.analysis.samples import read_phase

    control = read_phase(folder).frame()[KEY + ["correct"]].rename(columns={"correct": "correct_control"})
    merged = joined.merge(control, on=KEY, how="left")
    missing = merged["correct_control"].isna()
    if missing.all():
        raise DataError(f"--control {folder}: shares no docs with the analysed phases; evaluate the control cell "
                        "on the same --tasks")
    merged["correct_control"] = merged["correct_control"].astype("boolean")
    merged["forgotten_control"] = merged["correct_finetuned"] & ~merged["correct_control"].fillna(True)
    merged.loc[missing, "forgotten_control"] = False
    merged["has_control"] = ~missing
    return merged


def flip_by_decile(scope, opts: AnalysisOptions, confidence: str = "p_gold_finetuned"):
    """Flip rate (forgotten among fine-tuned-correct docs) by decile of ``confidence``, under forgetting and
    under the control, with Wilson CIs; pooled over tasks."""
    import pandas as pd

    edges = np.unique(np.quantile(scope[confidence], np.linspace(0, 1, 11)))
    bins = np.clip(np.searchsorted(edges, scope[confidence], side="right") - 1, 0, max(len(edges) - 2, 0))
    rows = []
    for d, g in scope.groupby(bins, sort=True):
        row = {"decile": int(d) + 1, "confidence_from": float(g[confidence].min()),
               "confidence_to": float(g[confidence].max()), "n": len(g)}
        for name, col in (("forget", "forgotten"), ("control", "forgotten_control")):
            rate, lo, hi = accuracy_ci(int(g[col].sum()), len(g), opts.confidence_level)
            row |= {f"flip_{name}": rate, f"flip_{name}_lo": lo, f"flip_{name}_hi": hi}
        rows.append(row)
    return pd.DataFrame(rows)


def _auc_rows(values: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """AUC = P(value of a positive > value of a negative) per row (Mann-Whitney U / n1 n0), NaN if one-class."""
    from scipy.stats import rankdata

    ranks = rankdata(values, axis=1)
    n1 = outcome.sum(axis=1)
    n0 = outcome.shape[1] - n1
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = ((ranks * outcome).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return np.where((n1 > 0) & (n0 > 0), auc, np.nan)


def excess_association(scope, predictor, opts: AnalysisOptions, *, name: str):
    """Per task: AUC of the predictor for 'forgotten' under forgetting, under the control, and the excess
    (difference) with paired-bootstrap CIs over docs."""
    import pandas as pd

    rows = []
    for task, g in scope.groupby("task", sort=True):
        v = predictor.loc[g.index].to_numpy(dtype=float)
        ok = np.isfinite(v)
        v, f, c = v[ok], g["forgotten"].to_numpy(bool)[ok], g["forgotten_control"].to_numpy(bool)[ok]
        row = {"predictor": name, "task": task, "n": len(v), "n_forgotten": int(f.sum()),
               "n_forgotten_control": int(c.sum())}
        idx = resample_indices(len(v), opts.n_bootstrap, stable_rng(opts.seed, "control", name, task))
        point_v = v[None, :]
        for key, y in (("auc_forget", f), ("auc_control", c)):
            row[key] = float(_auc_rows(point_v, y[None, :])[0])
            row[f"{key}_lo"], row[f"{key}_hi"] = percentile_ci(_auc_rows(v[idx], y[idx]), opts.confidence_level)
        row["excess"] = row["auc_forget"] - row["auc_control"]
        draws = _auc_rows(v[idx], f[idx]) - _auc_rows(v[idx], c[idx])
        row["excess_lo"], row["excess_hi"] = percentile_ci(draws, opts.confidence_level)
        rows.append(row)
    return pd.DataFrame(rows)


def control_lines(excess, opts: AnalysisOptions) -> list[str]:
    """Summary sentences: in how many tasks the association exceeds the control's."""
    lines = []
    if excess.empty:
        return ["Control cell given, but no example-level predictor to compare against it."]
    for name, g in excess.groupby("predictor", sort=True):
        ok = g[np.isfinite(g["excess_lo"]) & np.isfinite(g["excess_hi"])]
        beyond = ok[(ok["excess_lo"] > 0) | (ok["excess_hi"] < 0)]
        lines.append(f"{name} vs forgotten, against the control cell: the AUC differs from the control's in "
                     f"{len(beyond)} of {len(ok)} tasks ({int(opts.confidence_level * 100)}% paired-bootstrap CI of "
                     "the difference excludes 0); elsewhere the association is no larger than under no targeted "
                     "forgetting." if len(ok) else f"{name}: no task with enough docs for the control comparison.")
    return lines
