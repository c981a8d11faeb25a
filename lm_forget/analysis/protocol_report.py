"""The report's protocol section: accuracy on the forget set beside held-out and other-task accuracy.

The abstract's central contrast: a model trained to forget "learns to generate near-random predictions
for individual examples in the 'training' set used for forgetting", while held-out behaviour varies by
task. Per forget cell (task, forget-set size N, seed) this module tabulates, from lm-eval samples files,

- accuracy on exactly the N trained docs, for the pretrained, fine-tuned and forget models,
- accuracy on the held-out split of the same task (same three models),
- the forget model's accuracy on the other evaluated tasks (docs pooled),

each with an exact (Clopper-Pearson) interval, and a verdict on the forget set from a test that can come out
either way at its n (:func:`lm_forget.analysis.decide.chance_decision`, at ``AnalysisOptions.margin`` and
``alpha``): ``near chance`` (TOST), ``did not take`` (flagged in the report), ``below chance``,
``inconclusive``, or ``needs >= N docs`` when no outcome of this many docs could be called near chance.
The table's ``N`` is the number of forget-set docs actually scored (a pool smaller than the configured size
gives fewer; the configured size is the ``size`` column).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_forget.analysis.decide import DID_NOT_TAKE, chance_decision, near_chance_n
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.errors import DataError
from lm_forget.formats import samples_files
from lm_forget.io import read_jsonl

PHASES = ("pretrained", "finetuned", "forget")


@dataclass
class ProtocolCell:
    """Where one forget cell's lm-eval outputs are.

    Attributes:
        task: the forgotten task.
        n: forget-set size.
        seed: forget seed (``f<fine-tune seed>s<seed>`` on a fine-tune seed axis).
        forget_set: phase -> lm-eval output folder scoring the forget set (``eval_on=train``).
        held_out: phase -> lm-eval output folder scoring the held-out split (the forget phase: the cell's).
        other_tasks: tasks besides ``task`` the forget model was scored on (empty: ``forget_scope: self``).
    """

    task: str
    n: int | None
    seed: int | str
    forget_set: dict[str, Path] = field(default_factory=dict)
    held_out: dict[str, Path] = field(default_factory=dict)
    other_tasks: list[str] = field(default_factory=list)


def doc_correct(folder: Path, task: str) -> dict[str, int]:
    """doc id -> 1/0 (lm-eval's per-doc ``acc``) from ``samples_<task>_*.jsonl`` under ``folder``."""
    files = samples_files(folder, task)
    if not files:
        raise DataError(f"no samples_{task}_*.jsonl under {folder}: delete that step's folder to rerun its "
                        "evaluation (lm-eval must run with --log_samples).")
    out: dict[str, int] = {}
    for row in read_jsonl(files[-1]):
        out[str(row["doc"]["id"])] = int(float(row["acc"]) > 0.5)
    return out


def accuracy_ci(correct: Sequence[int], confidence: float = 0.95) -> dict[str, float]:
    """Accuracy, its exact (Clopper-Pearson) interval, k correct and n; NaN when there are no docs."""
    from scipy.stats import binomtest

    n, k = len(correct), int(sum(correct))
    if n == 0:
        return {"acc": math.nan, "low": math.nan, "high": math.nan, "k": 0, "n": 0}
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return {"acc": k / n, "low": float(ci.low), "high": float(ci.high), "k": k, "n": n}


def chance_verdict(ci: dict[str, float], options: AnalysisOptions | None = None) -> str:
    """The forget-set verdict of an :func:`accuracy_ci` (see :func:`lm_forget.analysis.decide.chance_decision`)."""
    opts = options or AnalysisOptions()
    return chance_decision(int(ci["k"]), int(ci["n"]), margin=opts.margin, alpha=opts.alpha).verdict


def _fmt(ci: dict[str, float] | None) -> str:
    if ci is None:
        return "not evaluated"
    if ci["n"] == 0:
        return "undefined (no docs)"
    return f"{ci['acc']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}] (n={ci['n']})"


def cell_rows(cell: ProtocolCell, options: AnalysisOptions | None = None) -> dict[str, Any]:
    """One table row: forget-set / held-out accuracies per phase, other tasks, the verdict and its test.

    ``n`` is the number of forget-set docs the forget model was scored on; ``size`` the configured size."""
    opts = options or AnalysisOptions()
    level = opts.confidence_level
    row: dict[str, Any] = {"task": cell.task, "size": cell.n, "seed": cell.seed}
    cis: dict[str, dict[str, float] | None] = {}
    for phase in PHASES:
        for kind, folders in (("forget_set", cell.forget_set), ("held_out", cell.held_out)):
            folder = folders.get(phase)
            ci = accuracy_ci(list(doc_correct(folder, cell.task).values()), level) if folder else None
            cis[f"{kind}_{phase}"] = ci
    other = None
    if cell.other_tasks and cell.held_out.get("forget"):
        pooled: list[int] = []
        for task in cell.other_tasks:
            pooled += list(doc_correct(cell.held_out["forget"], task).values())
        other = accuracy_ci(pooled, level)
    cis["other_tasks_forget"] = other
    for name, ci in cis.items():
        row[name] = _fmt(ci)
        for stat in ("acc", "low", "high", "k", "n"):
            row[f"{name}_{stat}"] = ci[stat] if ci else math.nan
    forget_ci = cis.get("forget_set_forget")
    row["n"] = forget_ci["n"] if forget_ci else math.nan
    if forget_ci:
        decision = chance_decision(int(forget_ci["k"]), int(forget_ci["n"]), margin=opts.margin, alpha=opts.alpha)
        row |= {"forget_set_verdict": decision.verdict, "forget_set_p": decision.p,
                "forget_set_n_needed": decision.n_needed, "forget_set_test": decision.test}
    else:
        row |= {"forget_set_verdict": "not evaluated", "forget_set_p": math.nan, "forget_set_n_needed": math.nan,
                "forget_set_test": ""}
    return row


def protocol_rows(cells: Sequence[ProtocolCell], options: AnalysisOptions | None = None) -> list[dict[str, Any]]:
    """The forget-set table's rows (one per forget cell)."""
    return [cell_rows(c, options) for c in cells]


def write_protocol_section(cells: Sequence[ProtocolCell], out: Path, options: AnalysisOptions | None = None, *,
                           rows: list[dict[str, Any]] | None = None, index_dir: Path | None = None) -> list[str]:
    """Write ``forget_set.csv`` and ``contrast.png`` under ``out``; return the report's markdown lines (figure,
    table, flags; the figure linked relative to ``index_dir``, default ``out.parent``).

    ``rows``: the cells' :func:`protocol_rows`, when the caller has them already."""
    import pandas as pd

    opts = options or AnalysisOptions()
    level = opts.confidence_level
    rows = protocol_rows(cells, opts) if rows is None else rows
    if not rows:
        return []
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(out / "forget_set.csv", index=False)
    for r in rows:
        r["forget_set_verdict_p"] = (f"{r['forget_set_verdict']} (p = {r['forget_set_p']:.3g})"
                                     if math.isfinite(r["forget_set_p"]) else r["forget_set_verdict"])
    shown = ["task", "n", "size", "seed", "forget_set_forget", "forget_set_verdict_p", "held_out_forget",
             "other_tasks_forget", "forget_set_finetuned", "held_out_finetuned", "forget_set_pretrained",
             "held_out_pretrained"]
    headers = ["task", "N (docs scored)", "size", "seed", "forget set (after forget)", "forget set",
               "held-out (after forget)",
               "other tasks (after forget, docs pooled)", "forget set (fine-tuned)", "held-out (fine-tuned)",
               "forget set (pretrained)", "held-out (pretrained)"]
    lines = ["## Forget set vs held-out", "",
             "The abstract's reading: after random-label forgetting the forget (training) set is near chance "
             f"(0.5), while held-out accuracy varies by task. Accuracy with exact {level:.0%} intervals. Forget-set "
             f"verdict at alpha = {opts.alpha:g}, margin = {opts.margin:g}: near chance = two one-sided exact "
             f"binomial tests (TOST) show the accuracy within 0.5 ± {opts.margin:g}; did not take = shown above "
             f"{0.5 + opts.margin:g}; 'needs >= N docs' = no outcome of this many docs could be called near chance "
             f"(near chance needs >= {near_chance_n(0.5, opts.margin, opts.alpha)} docs). N = forget-set docs "
             "scored; size = the configured forget-set size.", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]) for c in shown) + " |")
    from lm_forget.analysis.contrast_plot import plot_contrast

    figure = plot_contrast(rows, out / "contrast.png", confidence_level=level)
    lines += ["", f"![forget set vs held-out vs other tasks, per forget cell and phase]"
                  f"({figure.relative_to(index_dir or out.parent).as_posix()})"]
    flags = [r for r in rows if r["forget_set_verdict"] == DID_NOT_TAKE]
    if flags:
        lines += [""] + [f"- **{r['task']} (N={r['n']}, seed {r['seed']}): forgetting did not take: forget-set "
                         f"accuracy {r['forget_set_forget_acc']:.3f} ± "
                         f"{(r['forget_set_forget_high'] - r['forget_set_forget_low']) / 2:.3f} "
                         f"({level:.0%} CI [{r['forget_set_forget_low']:.3f}, {r['forget_set_forget_high']:.3f}]; "
                         f"above {0.5 + opts.margin:g}: p = {r['forget_set_p']:.3g}).** "
                         "Its forget ratio describes a forget pass that did not reach the trained docs."
                         for r in flags]
    lines += ["", f"Table as CSV: `{(out / 'forget_set.csv').name}`.", ""]
    (out / "forget_set.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def write_dynamics_section(inputs: dict[str, tuple[Path, list[Path]]], out: Path,
                           options: Any = None) -> list[str]:
    """Learning vs forgetting order per (size, seed): ``out/dynamics-<label>/``; the report's markdown lines."""
    import pandas as pd

    from lm_forget.analysis.dynamics import DynamicsOptions, analyze_dynamics

    options = options or DynamicsOptions()
    if not inputs:
        return []
    lines = ["## Learning order vs forgetting order", "",
             f"Learned at: first fine-tuning step from which P(gold vs distractor) stays >= {options.threshold:g}; "
             "forgotten at: first forgetting step from which it stays below. Spearman rank correlation per task "
             f"(bootstrap 95% CI); tasks with fewer than {options.min_docs} qualifying docs are reported but not "
             "pooled. (The order analysis and the 0.6 threshold follow a secondary reading of the paper.)", ""]
    for label, (finetune, cells) in inputs.items():
        forget = pd.concat([pd.read_parquet(p) for p in cells], ignore_index=True)
        learn = pd.read_parquet(finetune)
        frame = pd.concat([learn[learn["doc_id"].isin(set(forget["doc_id"]))], forget], ignore_index=True)
        paths = analyze_dynamics(frame, out / f"dynamics-{label}", options)
        stats = pd.read_csv(paths["stats"])
        lines += [f"### {label}", "", stats.to_markdown(index=False, floatfmt=".3f"), "",
                  f"![learned vs forgotten]({paths['figure'].relative_to(out.parent)})", ""]
    return lines
