"""The report's method comparison: per forgetting method and forget cell, what was forgotten and what else went.

For a study with ``forget.methods`` (cells: method x task x size x seed), each row is one cell, from the same
lm-eval samples files the protocol section reads (``protocol_report``):

- forget set: the forget model's accuracy on exactly the N docs it was trained to forget,
- held-out: its accuracy on the held-out split of the same task (does forgetting generalize?),
- other tasks: its accuracy on the other evaluated tasks, docs pooled (collateral damage),

each an accuracy with an exact (Clopper-Pearson) 95% interval from the counts, beside the fine-tuned model's
accuracy on the same docs. Rows are cells, not seed averages: docs are the unit of the intervals, and seeds
stay separate rather than being pooled as if they were more docs. A missing evaluation says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lm_forget.analysis.protocol_report import ProtocolCell, _fmt, accuracy_ci, doc_correct

#: (column prefix, header, what it measures) of the three comparisons, in panel order
MEASURES = (("forget_set", "forget set", "the trained (forgotten) docs"),
            ("held_out", "held-out", "held-out docs of the same task"),
            ("other_tasks", "other tasks", "the other evaluated tasks, docs pooled"))


def _ci(folder: Path | None, tasks: Sequence[str]) -> dict[str, float] | None:
    if folder is None or not tasks:
        return None
    pooled: list[int] = []
    for task in tasks:
        pooled += list(doc_correct(folder, task).values())
    return accuracy_ci(pooled)


def method_rows(cells: Sequence[tuple[str | None, ProtocolCell]]) -> list[dict[str, Any]]:
    """One row per (method, cell): forget-set, held-out and other-task accuracy after forgetting (and fine-tuned)."""
    rows = []
    for method, cell in cells:
        row: dict[str, Any] = {"method": method or "default", "task": cell.task, "n": math.nan, "size": cell.n,
                               "seed": cell.seed}
        for phase in ("forget", "finetuned"):
            cis = {"forget_set": _ci(cell.forget_set.get(phase), [cell.task]),
                   "held_out": _ci(cell.held_out.get(phase), [cell.task]),
                   "other_tasks": _ci(cell.held_out.get(phase), cell.other_tasks)}
            for name, ci in cis.items():
                col = f"{name}_{phase}"
                row[col] = _fmt(ci)
                for stat in ("acc", "low", "high", "n"):
                    row[f"{col}_{stat}"] = ci[stat] if ci else math.nan
        row["n"] = row["forget_set_forget_n"]  # N = forget-set docs actually scored (size: the configured one)
        rows.append(row)
    return rows


def plot_methods(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """One panel per method: forget set / held-out / other tasks after forgetting, per cell, with 95% CI bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, len(methods), figsize=(max(4.0, 3.2 * len(methods)), 3.6), sharey=True,
                             squeeze=False)
    width = 0.8 / len(MEASURES)
    for ax, method in zip(axes[0], methods, strict=True):
        mine = [r for r in rows if r["method"] == method]
        for j, (name, header, _) in enumerate(MEASURES):
            xs, ys, errs = [], [], [[], []]
            for i, r in enumerate(mine):
                acc = r[f"{name}_forget_acc"]
                if math.isnan(acc):
                    continue  # not evaluated or undefined: no bar (the table says which)
                xs.append(i + (j - 1) * width)
                ys.append(acc)
                errs[0].append(acc - r[f"{name}_forget_low"])
                errs[1].append(r[f"{name}_forget_high"] - acc)
            ax.bar(xs, ys, width, yerr=errs, capsize=2, label=header)
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xticks(range(len(mine)))
        ax.set_xticklabels([f"{r['task'].removeprefix('forget_').removeprefix('demo_')}\nN={r['n']} s{r['seed']}"
                            for r in mine], fontsize=7)
        ax.set_title(method)
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("accuracy after forgetting (95% CI)")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_methods_section(cells: Sequence[tuple[str | None, ProtocolCell]], out: Path) -> list[str]:
    """Write ``methods.csv``, ``methods.md`` and ``methods.png`` under ``out``; return the report's markdown lines."""
    import pandas as pd

    rows = method_rows(cells)
    if not rows:
        return []
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "methods.csv", index=False)
    figure = plot_methods(rows, out / "methods.png")
    shown = ["method", "task", "n", "size", "seed", "forget_set_forget", "held_out_forget", "other_tasks_forget",
             "forget_set_finetuned", "held_out_finetuned", "other_tasks_finetuned"]
    headers = ["method", "forgotten task", "N (docs scored)", "size", "seed", "forget set", "held-out", "other tasks",
               "forget set (fine-tuned)", "held-out (fine-tuned)", "other tasks (fine-tuned)"]
    lines = ["## Forgetting methods compared", "",
             "Per method and forget cell, accuracy after forgetting on " + "; ".join(
                 f"**{h}**: {what}" for _, h, what in MEASURES) + ". Exact 95% intervals from the doc counts; "
             "chance is 0.5. The fine-tuned columns are the same docs before forgetting.", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(r[c]) for c in shown) + " |" for r in rows]
    lines += ["", f"![forgetting methods]({figure.parent.name}/{figure.name})", "",
              f"Table as CSV: `{out.name}/methods.csv`.", ""]
    (out / "methods.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines
