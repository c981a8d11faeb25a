"""The abstract's contrast at a glance: per forget cell, accuracy on the forget set vs held-out vs other tasks
across the three phases (pretrained, fine-tuned, after forgetting), from the forget-set table's rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: (column prefix, legend) of the three lines, and the phases on the x axis
SERIES = (("forget_set", "forget set"), ("held_out", "held-out"), ("other_tasks", "other tasks"))
PHASES = (("pretrained", "pretrained"), ("finetuned", "fine-tuned"), ("forget", "after forget"))


def _point(row: dict[str, Any], name: str, phase: str) -> tuple[float, float, float]:
    acc = row.get(f"{name}_{phase}_acc", math.nan)
    lo, hi = row.get(f"{name}_{phase}_acc_lo", math.nan), row.get(f"{name}_{phase}_acc_hi", math.nan)
    return float(acc), float(lo), float(hi)


def plot_contrast(rows: Sequence[dict[str, Any]], path: Path, *, confidence_level: float = 0.95) -> Path:
    """One panel per forget cell; a line per series over the phases, with its exact interval as error bars.

    Points that were not evaluated (other tasks before forgetting: the table keeps them after forgetting
    only) are left out rather than drawn as zeros."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(rows), 4)
    nrows = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.9 * nrows), sharey=True, squeeze=False)
    for ax, row in zip(axes.flat, rows, strict=False):
        for j, (name, label) in enumerate(SERIES):
            xs, ys, err = [], [], [[], []]
            for i, (phase, _) in enumerate(PHASES):
                acc, lo, hi = _point(row, name, phase)
                if not math.isfinite(acc):
                    continue
                xs.append(i + (j - 1) * 0.06)
                ys.append(acc)
                err[0].append(acc - lo if math.isfinite(lo) else 0.0)
                err[1].append(hi - acc if math.isfinite(hi) else 0.0)
            if xs:
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=2, label=label)
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xticks(range(len(PHASES)))
        ax.set_xticklabels([label for _, label in PHASES], fontsize=7)
        ax.set_title(f"{str(row['task']).removeprefix('forget_').removeprefix('demo_')} (N={row['n']}, "
                     f"s{row['seed']})\n{row.get('forget_set_verdict', '')}", fontsize=8)
        ax.set_ylim(0, 1)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    axes[0][0].set_ylabel(f"accuracy ({confidence_level:.0%} exact CI)")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
