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


def ratio_matrix(table, finetuned_acc: dict[str, float], *, chance: float = 0.5, min_denominator: float = 0.05):
    """Forget-ratio matrix (rows trained task, columns eval task), filling fine-tuned accuracies from
    ``finetuned_acc`` where the table has none."""
    from lm_forget.analysis.metrics import forget_ratio

    table = table.copy()
    fill = table["eval_task"].map(finetuned_acc)
    table["acc_finetuned"] = table["acc_finetuned"].where(table["acc_finetuned"].notna(), fill)
    if table["acc_finetuned"].isna().any():
        missing = sorted(table.loc[table["acc_finetuned"].isna(), "eval_task"].unique())
        raise DataError(f"matrix: no fine-tuned accuracy for eval task(s) {', '.join(missing)}: "
                        "evaluate the fine-tuned model on them (--finetuned) or add acc_finetuned to matrix.csv")
    table["forget_ratio"] = [forget_ratio(ft, fg, chance=chance, min_denominator=min_denominator)
                             for ft, fg in zip(table["acc_finetuned"], table["acc_forget"], strict=True)]
    return table.pivot(index="trained_task", columns="eval_task", values="forget_ratio"), table


def upgma_order(matrix) -> tuple[list[str], list[str], object, object]:
    """UPGMA (average-linkage, Euclidean) leaf orders of rows and columns, and both linkages.

    Missing cells are filled with their column mean (rows) / row mean (columns) for clustering only.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage

    values = matrix.to_numpy(dtype=float)
    rows = np.where(np.isnan(values), np.nanmean(values, axis=0, keepdims=True), values)
    cols = np.where(np.isnan(values), np.nanmean(values, axis=1, keepdims=True), values).T
    rows, cols = np.nan_to_num(rows), np.nan_to_num(cols)
    row_link = linkage(rows, method="average", metric="euclidean") if len(rows) > 1 else None
    col_link = linkage(cols, method="average", metric="euclidean") if len(cols) > 1 else None
    row_order = [matrix.index[i] for i in leaves_list(row_link)] if row_link is not None else list(matrix.index)
    col_order = [matrix.columns[i] for i in leaves_list(col_link)] if col_link is not None else list(matrix.columns)
    return row_order, col_order, row_link, col_link


def variance_shares(matrix) -> dict[str, float]:
    """How much of the forget-ratio variance the trained task (rows) vs the evaluated task (columns)
    explains: an additive two-way decomposition (sums of squares) on the complete cells."""
    m = matrix.dropna(axis=0, how="any").dropna(axis=1, how="any").to_numpy(dtype=float)
    out = {"n_rows": m.shape[0], "n_cols": m.shape[1] if m.ndim == 2 else 0}
    if m.size == 0 or min(m.shape) < 2:
        return out | {"row_share": math.nan, "col_share": math.nan, "residual_share": math.nan}
    grand = m.mean()
    ss_total = float(((m - grand) ** 2).sum())
    ss_rows = float(m.shape[1] * ((m.mean(axis=1) - grand) ** 2).sum())
    ss_cols = float(m.shape[0] * ((m.mean(axis=0) - grand) ** 2).sum())
    if ss_total == 0:
        return out | {"row_share": math.nan, "col_share": math.nan, "residual_share": math.nan}
    diag = [matrix.loc[t, t] for t in matrix.index if t in matrix.columns]
    off = matrix.to_numpy(dtype=float)[[[r != c for c in matrix.columns] for r in matrix.index]]
    return out | {"row_share": ss_rows / ss_total, "col_share": ss_cols / ss_total,
                  "residual_share": 1 - (ss_rows + ss_cols) / ss_total,
                  "diagonal_mean": float(np.nanmean(diag)) if diag else math.nan,
                  "off_diagonal_mean": float(np.nanmean(off)) if off.size else math.nan}
