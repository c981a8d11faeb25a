"""Figures (matplotlib, Agg backend): labelled axes, chance lines. Each function returns the figure;
:func:`save` writes it (as PNG and PDF by default) and closes it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PHASE_COLORS = {"pretrained": "#9e9e9e", "finetuned": "#1f77b4", "forget": "#d62728"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig: Figure, stem: Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``stem.<fmt>`` for each format; returns the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    _plt().close(fig)
    return paths


def accuracy_bars(metrics, title: str = "", level: float = 0.95) -> Figure:
    """Per-task grouped bars: pretrained / fine-tuned / after-forget accuracy with Wilson CIs (at ``level``)."""
    plt = _plt()
    tasks = list(metrics["task"])
    x = np.arange(len(tasks))
    width = 0.27
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(tasks) + 2), 4))
    for i, phase in enumerate(("pretrained", "finetuned", "forget")):
        acc = metrics[f"acc_{phase}"].to_numpy()
        err = np.vstack([acc - metrics[f"acc_{phase}_lo"], metrics[f"acc_{phase}_hi"] - acc])
        ax.bar(x + (i - 1) * width, acc, width, yerr=err, capsize=2, label=phase, color=PHASE_COLORS[phase])
    ax.axhline(float(metrics["chance"].mean()), color="k", ls="--", lw=1, label="chance")
    ax.set_xticks(x, tasks, rotation=45, ha="right")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title or f"Accuracy per task ({level:.0%} Wilson CI)")
    ax.legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    return fig


def predictor_scatter(x, y, labels, *, xlabel: str, ylabel: str, annotation: str, yerr=None) -> Figure:
    """Outcome vs predictor per task (error bars: the outcome's CI, ``yerr`` = (lows, highs)), least-squares
    fit line, rho / p annotated."""
    plt = _plt()
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    fig, ax = plt.subplots(figsize=(5, 4))
    if yerr is not None:
        lo, hi = (np.asarray(v, dtype=float)[ok] for v in yerr)
        err = np.vstack([np.nan_to_num(y[ok] - lo), np.nan_to_num(hi - y[ok])]).clip(min=0)
        ax.errorbar(x[ok], y[ok], yerr=err, fmt="none", ecolor="#9ecae1", capsize=2, lw=1)
    ax.scatter(x[ok], y[ok], color="#1f77b4")
    for xi, yi, name in zip(x[ok], y[ok], np.asarray(labels)[ok], strict=True):
        ax.annotate(str(name).removeprefix("forget_"), (xi, yi), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    if ok.sum() >= 2 and np.ptp(x[ok]) > 0:
        slope, intercept = np.polyfit(x[ok], y[ok], 1)
        xs = np.linspace(x[ok].min(), x[ok].max(), 50)
        ax.plot(xs, slope * xs + intercept, color="k", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(annotation, fontsize=9)  # in the title: never hides a point
    return fig


def matrix_heatmap(matrix, row_order, col_order, row_link=None, col_link=None) -> Figure:
    """UPGMA-ordered forget-ratio heatmap (rows: trained task, columns: evaluated task), with the
    row and column dendrograms when the linkages are given."""
    from scipy.cluster.hierarchy import dendrogram

    plt = _plt()
    m = matrix.loc[row_order, col_order]
    values = m.to_numpy(dtype=float)
    row_labels = [str(t).removeprefix("forget_") for t in row_order]
    # widths in inches: row dendrogram | heatmap | the row labels (8 pt ~ 0.075 in/char) | colorbar + its label
    widths = [0.9, max(2.5, 0.5 * len(col_order) + 0.5), 0.075 * max(map(len, row_labels)) + 0.25, 0.2, 0.7]
    height = max(3, 0.45 * len(row_order) + 2)
    fig = plt.figure(figsize=(sum(widths) + 0.4, height))
    grid = fig.add_gridspec(2, 5, width_ratios=widths, height_ratios=[1, 5], wspace=0.0, hspace=0.02,
                            left=0.06, right=0.98)
    ax = fig.add_subplot(grid[1, 1])
    if row_link is not None:
        dax = fig.add_subplot(grid[1, 0])
        dendrogram(row_link, orientation="left", ax=dax, no_labels=True, color_threshold=0,
                   above_threshold_color="#555")
        dax.invert_yaxis()  # leaves top-to-bottom, like the heatmap rows
        dax.axis("off")
    if col_link is not None:
        dax = fig.add_subplot(grid[0, 1])
        dendrogram(col_link, ax=dax, no_labels=True, color_threshold=0, above_threshold_color="#555")
        dax.axis("off")
        dax.set_title("Cross-task forget ratio (UPGMA-clustered)")
    else:
        ax.set_title("Cross-task forget ratio (UPGMA-clustered)")
    im = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(col_order)), [str(t).removeprefix("forget_") for t in col_order], rotation=60,
                  ha="right", fontsize=8)
    ax.set_yticks(range(len(row_order)), row_labels, fontsize=8)
    ax.yaxis.tick_right()
    ax.set_xlabel("evaluated task")
    fig.text(0.015, 0.42, "task forgotten (random labels)", rotation=90, va="center", ha="center")
    if values.size <= 144:
        mid = np.nanmean(values) if np.isfinite(values).any() else 0.0
        for (i, j), v in np.ndenumerate(values):
            if math.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="k" if v > mid else "w")
    fig.colorbar(im, cax=fig.add_subplot(grid[1, 3]), label="forget ratio")
    return fig


def probe_by_layer(probes, model_acc: dict[str, float]) -> Figure:
    """Probe doc-level accuracy by layer per role (mean over tasks), model accuracy as dashed lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (role, g) in enumerate(probes.groupby("role", sort=True)):
        mean = g.groupby("layer")["probe_doc_acc"].mean()
        color = colors[i % len(colors)]
        ax.plot(mean.index, mean.to_numpy(), marker="o", color=color, label=f"probe, {role}")
        if role in model_acc and math.isfinite(model_acc[role]):
            ax.axhline(model_acc[role], color=color, ls=":", lw=1.2, label=f"model accuracy, {role}")
    ax.axhline(0.5, color="k", ls="--", lw=1, label="chance")
    ax.set_xlabel("hidden-state index (0 = embeddings)")
    ax.set_ylabel("accuracy on held-out docs")
    ax.set_ylim(0, 1)
    ax.set_title("Linear probes: right vs wrong answer")
    ax.legend(fontsize=7)
    return fig


def confidence_histograms(joined) -> Figure:
    """Histograms of P(correct vs distractor) per phase, chance at 0.5."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3), sharey=True)
    bins = np.linspace(0, 1, 21)
    for ax, phase in zip(axes, ("pretrained", "finetuned", "forget"), strict=True):
        ax.hist(joined[f"p_gold_{phase}"], bins=bins, color=PHASE_COLORS[phase])
        ax.axvline(0.5, color="k", ls="--", lw=1)
        ax.set_title(phase)
        ax.set_xlabel("P(correct vs distractor)")
    axes[0].set_ylabel("docs")
    return fig
