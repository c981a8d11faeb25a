"""Cross-task matrix: forget on task A (row), evaluate on task B (column), forget ratio in each cell.

Inputs (``analyze --matrix DIR``): either ``DIR/matrix.csv`` (columns ``trained_task, eval_task,
acc_forget`` and optionally ``acc_finetuned, n``; see :func:`merge_matrix`), or one lm-eval output
folder per row, ``DIR/<trained_task>/`` (the model forgotten on that task, evaluated on every task).
A row folder may hold ``finetuned/`` and ``forget/`` subfolders when each row has its own fine-tuned
model; otherwise the fine-tuned reference accuracy of column B is the ``--finetuned`` phase's.
Rows and columns are ordered by UPGMA (``scipy.cluster.hierarchy.linkage(method="average")``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lm_forget.errors import DataError

MATRIX_FILE = "matrix.csv"
COLUMNS = ["trained_task", "eval_task", "acc_forget", "acc_finetuned", "n"]


def _phase_accuracy(folder: Path, split: str) -> dict[str, tuple[float, int]]:
    from lm_forget.analysis.samples import read_phase

    frame = read_phase(folder).frame()
    frame = frame[frame["split"] == split]
    return {t: (float(g["correct"].mean()), len(g)) for t, g in frame.groupby("task")}


def read_matrix_dir(root: Path | str, *, split: str = "test"):
    """The long matrix table of one folder (``matrix.csv`` or row folders)."""
    import pandas as pd

    root = Path(root)
    if (root / MATRIX_FILE).is_file():
        table = pd.read_csv(root / MATRIX_FILE)
        missing = [c for c in ("trained_task", "eval_task", "acc_forget") if c not in table.columns]
        if missing:
            raise DataError(f"{root / MATRIX_FILE}: missing column(s) {', '.join(missing)}")
        for col in ("acc_finetuned", "n"):
            if col not in table.columns:
                table[col] = math.nan
        return table[COLUMNS]
    if not root.is_dir():
        raise DataError(f"matrix folder {root} does not exist")
    rows = []
    for row_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        own_ft = (row_dir / "finetuned").is_dir() and (row_dir / "forget").is_dir()
        forget = _phase_accuracy(row_dir / "forget" if own_ft else row_dir, split)
        ft = _phase_accuracy(row_dir / "finetuned", split) if own_ft else {}
        for task, (acc, n) in forget.items():
            rows.append({"trained_task": row_dir.name, "eval_task": task, "acc_forget": acc,
                         "acc_finetuned": ft.get(task, (math.nan, 0))[0], "n": n})
    if not rows:
        raise DataError(f"{root}: neither {MATRIX_FILE} nor row folders <trained_task>/ of lm-eval results")
    return pd.DataFrame(rows, columns=COLUMNS)


def merge_matrix(shard_dirs, out: Path | str, *, split: str = "test") -> Path:
    """Merge matrix shards (each a ``matrix.csv`` folder or row folders) into ``out/matrix.csv``."""
    import pandas as pd

    tables = [read_matrix_dir(d, split=split) for d in shard_dirs]
    if not tables:
        raise DataError("merge_matrix: no shard folders given")
    table = pd.concat(tables, ignore_index=True)
    dup = table.duplicated(["trained_task", "eval_task"], keep=False)
    if dup.any():
        pair = table[dup].iloc[0]
        raise DataError(f"matrix cell ({pair['trained_task']}, {pair['eval_task']}) appears in two shards "
                        f"of {', '.join(map(str, shard_dirs))}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / MATRIX_FILE
    table.sort_values(["trained_task", "eval_task"]).to_csv(path, index=False)
    return path


def ratio_matrix(table, finetuned_acc: dict[str, float], *, chance: float = 0.5, min_denominator: float = 0.05,
                 finetuned_n: dict[str, int] | None = None, opts=None):
    """Forget-ratio matrix (rows trained task, columns eval task), filling fine-tuned accuracies from
    ``finetuned_acc`` where the table has none; the long table gains the absolute drop, both with CIs, and
    ``ratio_note`` (why a cell's ratio is undefined: the same rule as the per-task ratio)."""
    from lm_forget.analysis.options import AnalysisOptions

    opts = opts or AnalysisOptions(min_denominator=min_denominator)
    table = table.copy()
    fill = table["eval_task"].map(finetuned_acc)
    from_phase = table["acc_finetuned"].isna()
    table["acc_finetuned"] = table["acc_finetuned"].where(~from_phase, fill)
    if table["acc_finetuned"].isna().any():
        missing = sorted(table.loc[table["acc_finetuned"].isna(), "eval_task"].unique())
        raise DataError(f"matrix: no fine-tuned accuracy for eval task(s) {', '.join(missing)}: "
                        "evaluate the fine-tuned model on them (--finetuned) or add acc_finetuned to matrix.csv")
    n_ft = table["n"].where(~from_phase, table["eval_task"].map(finetuned_n or {}))
    cells = [cell_intervals(ft, fg, n, nf, chance, opts, seed_tag=(a, b))
             for a, b, ft, fg, n, nf in zip(table["trained_task"], table["eval_task"], table["acc_finetuned"],
                                            table["acc_forget"], table["n"], n_ft, strict=True)]
    for key in cells[0] if cells else ():
        table[key] = [c[key] for c in cells]
    return table.pivot(index="trained_task", columns="eval_task", values="forget_ratio"), table


def cell_intervals(acc_ft: float, acc_fg: float, n, n_ft, chance: float, opts, *, seed_tag=()) -> dict:
    """Drop and forget ratio of one matrix cell with bootstrap CIs.

    ``matrix.csv`` carries accuracies and n, not docs, so the two accuracies are resampled as independent
    binomials (a parametric bootstrap): this ignores the positive pairing of the same docs, which makes the
    interval of the difference wider, never narrower, than the paired one.
    """
    from lm_forget.analysis.metrics import accuracy_ci, forget_ratio, ratio_definition
    from lm_forget.analysis.uncertainty import percentile_ci, stable_rng

    out = {"forget_drop": acc_ft - acc_fg, "forget_drop_lo": math.nan, "forget_drop_hi": math.nan,
           "forget_ratio": math.nan, "forget_ratio_lo": math.nan, "forget_ratio_hi": math.nan, "ratio_note": ""}
    known = all(isinstance(v, int | float | np.integer | np.floating) and math.isfinite(v) and v > 0
                for v in (n, n_ft))
    if not known:
        ratio = forget_ratio(acc_ft, acc_fg, chance=chance, min_denominator=opts.min_denominator)
        note = "" if math.isfinite(ratio) else "undefined: fine-tuned accuracy below chance + min_denominator"
        return out | {"forget_ratio": ratio, "ratio_note": note or "no n in matrix.csv: no CI"}
    n, n_ft = int(n), int(n_ft)
    note = ratio_definition(accuracy_ci(round(acc_ft * n_ft), n_ft, opts.confidence_level)[1], chance, opts)
    rng = stable_rng(opts.seed, "matrix", *seed_tag)
    b_ft = rng.binomial(n_ft, acc_ft, opts.n_bootstrap) / n_ft
    b_fg = rng.binomial(n, acc_fg, opts.n_bootstrap) / n
    out["forget_drop_lo"], out["forget_drop_hi"] = percentile_ci(b_ft - b_fg, opts.confidence_level)
    out["ratio_note"] = note
    if not note:
        den = b_ft - chance
        with np.errstate(divide="ignore", invalid="ignore"):
            draws = np.where(den > 0, (b_ft - b_fg) / np.where(den > 0, den, 1.0), np.nan)
        out["forget_ratio"] = (acc_ft - acc_fg) / (acc_ft - chance)
        out["forget_ratio_lo"], out["forget_ratio_hi"] = percentile_ci(draws, opts.confidence_level)
    return out


def upgma_order(matrix) -> tuple[list[str], list[str], object, object]:
    """UPGMA (average-linkage, Euclidean) leaf orders of rows and columns, and both linkages.

    Missing cells are filled with their column mean (rows) / row mean (columns) for clustering only.
    """
    import warnings

    from scipy.cluster.hierarchy import leaves_list, linkage

    values = matrix.to_numpy(dtype=float)
    with warnings.catch_warnings():  # an all-NaN (undefined) column has no mean: nan_to_num below makes it 0
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = np.where(np.isnan(values), np.nanmean(values, axis=0, keepdims=True), values)
        cols = np.where(np.isnan(values), np.nanmean(values, axis=1, keepdims=True), values).T
    rows, cols = np.nan_to_num(rows), np.nan_to_num(cols)
    row_link = linkage(rows, method="average", metric="euclidean") if len(rows) > 1 else None
    col_link = linkage(cols, method="average", metric="euclidean") if len(cols) > 1 else None
    row_order = [matrix.index[i] for i in leaves_list(row_link)] if row_link is not None else list(matrix.index)
    col_order = [matrix.columns[i] for i in leaves_list(col_link)] if col_link is not None else list(matrix.columns)
    return row_order, col_order, row_link, col_link


def complete_submatrix(matrix):
    """The largest complete sub-matrix found greedily: drop the emptiest row or column (most NaN cells, rows
    first on ties), repeat until no NaN is left. One unlearnable evaluated task (a NaN column) costs one
    column, not every row."""
    m = matrix.copy()
    while m.size and m.isna().to_numpy().any():
        row_nan, col_nan = m.isna().sum(axis=1), m.isna().sum(axis=0)
        # fraction of the line that is missing, so a short side is not always preferred
        r, c = row_nan.idxmax(), col_nan.idxmax()
        m = m.drop(index=r) if row_nan[r] / m.shape[1] >= col_nan[c] / m.shape[0] else m.drop(columns=c)
    return m


def variance_shares(matrix) -> dict[str, float]:
    """How much of the cell variance the trained task (rows) vs the evaluated task (columns) explains: an
    additive two-way decomposition (sums of squares) over the largest complete sub-matrix."""
    sub = complete_submatrix(matrix)
    m = sub.to_numpy(dtype=float)
    out = {"n_rows": int(m.shape[0]), "n_cols": int(m.shape[1]) if m.ndim == 2 else 0,
           "dropped_rows": sorted(map(str, set(matrix.index) - set(sub.index))),
           "dropped_cols": sorted(map(str, set(matrix.columns) - set(sub.columns)))}
    nan = {"row_share": math.nan, "col_share": math.nan, "residual_share": math.nan}
    if m.size == 0 or min(m.shape) < 2:
        return out | nan
    grand = m.mean()
    ss_total = float(((m - grand) ** 2).sum())
    ss_rows = float(m.shape[1] * ((m.mean(axis=1) - grand) ** 2).sum())
    ss_cols = float(m.shape[0] * ((m.mean(axis=0) - grand) ** 2).sum())
    if ss_total == 0:
        return out | nan
    diag = [matrix.loc[t, t] for t in matrix.index if t in matrix.columns]
    off = matrix.to_numpy(dtype=float)[[[r != c for c in matrix.columns] for r in matrix.index]]
    return out | {"row_share": ss_rows / ss_total, "col_share": ss_cols / ss_total,
                  "residual_share": 1 - (ss_rows + ss_cols) / ss_total,
                  "diagonal_mean": float(np.nanmean(diag)) if diag else math.nan,
                  "off_diagonal_mean": float(np.nanmean(off)) if off.size else math.nan}


def _side(shares: dict) -> str:
    if not math.isfinite(shares.get("row_share", math.nan)):
        return ""
    return "evaluated task" if shares["col_share"] > shares["row_share"] else "forgotten (trained) task"


def decompose(long) -> dict:
    """Variance shares of the forget-ratio and of the absolute-drop matrices, and whether the side that
    "matters more" depends on the normalisation (an artefact of dividing by acc_ft - chance per column)."""
    ratio = long.pivot(index="trained_task", columns="eval_task", values="forget_ratio")
    # the same cells for both, so that only the normalisation differs between the two decompositions
    drop = long.pivot(index="trained_task", columns="eval_task", values="forget_drop").where(ratio.notna())
    out = {"forget_ratio": variance_shares(ratio), "forget_drop": variance_shares(drop)}
    a, b = _side(out["forget_ratio"]), _side(out["forget_drop"])
    out["normalisation_artefact"] = bool(a and b and a != b)
    out["side_ratio"], out["side_drop"] = a, b
    return out


def decomposition_lines(dec: dict) -> list[str]:
    """The summary sentences of :func:`decompose`."""
    r, d = dec["forget_ratio"], dec["forget_drop"]
    if not math.isfinite(r.get("row_share", math.nan)):
        return ["Cross-task matrix too small or incomplete for a variance decomposition "
                f"(largest complete sub-matrix {r['n_rows']}x{r['n_cols']})."]
    dropped = r["dropped_rows"] + r["dropped_cols"]
    where = (f"largest complete sub-matrix {r['n_rows']}x{r['n_cols']}"
             + (f", without {', '.join(dropped)} (undefined cells)" if dropped else ""))
    line = (f"Cross-task matrix ({where}): forget ratio: the evaluated task explains {r['col_share']:.0%} of the "
            f"variance, the forgotten task {r['row_share']:.0%} (residual {r['residual_share']:.0%}); absolute "
            f"drop acc_ft - acc_forget: {d['col_share']:.0%} / {d['row_share']:.0%} (residual "
            f"{d['residual_share']:.0%}).")
    if dec["normalisation_artefact"]:
        return [line + f" The two disagree: the ratio says the {dec['side_ratio']} matters more, the absolute "
                       f"drop says the {dec['side_drop']} does -> NORMALISATION ARTEFACT: dividing by "
                       "acc_ft - chance of the evaluated task moves variance between rows and columns; no verdict."]
    return [line + f" Both say the {dec['side_ratio']} matters more."]
