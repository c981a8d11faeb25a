"""The report's relearning section: does a few-example gold-label fine-tune bring a forgotten task back?

Per forget cell (task, forget-set size N, seed) and relearning-set size k, from lm-eval samples files of
the held-out split of the forgotten task:

- accuracy of the fine-tuned, the forgotten and the relearned model, each with a Wilson 95% interval;
- the paired differences relearned - forgotten and relearned - fine-tuned (same docs in every phase),
  with a paired bootstrap 95% interval over docs;
- the recovered share ``(acc_relearn - acc_forget) / (acc_finetuned - acc_forget)``, defined only when
  the denominator (the forget drop) is shown above ``min_denominator`` (one-sided paired test at ``alpha``,
  :func:`lm_forget.analysis.decide.paired_p`). Otherwise NaN, with the reason, as forget ratios are;
- the verdict ``relearned`` (the gain relearn - forget shown > ``margin``), ``not relearned`` (shown < margin),
  ``inconclusive``, or ``needs >= N docs`` when no gain could be shown < margin at this n (one-sided paired
  tests at ``alpha``, the one margin of :class:`AnalysisOptions`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lm_forget.analysis.decide import INCONCLUSIVE, needs, paired_n, paired_p
from lm_forget.analysis.metrics import accuracy_ci
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.protocol_report import doc_correct
from lm_forget.analysis.uncertainty import Interval, resample_indices, resampled_means, stable_rng
from lm_forget.errors import DataError

PHASES = ("finetuned", "forget", "relearn")


@dataclass
class RelearnCell:
    """Where one relearned model's held-out evaluation and its references are.

    Attributes:
        task: the forgotten (and relearned) task.
        n: forget-set size.
        seed: forget seed (``f<fine-tune seed>s<seed>`` on a fine-tune seed axis).
        k: relearning-set size.
        pool: where the k docs came from (``forget_set`` or ``held_in``).
        method: the forgetting method's id on a ``forget.methods`` axis (None: one method).
        held_out: phase (finetuned, forget, relearn) -> lm-eval output folder scoring the held-out split.
    """

    task: str
    n: int | None
    seed: int | str
    k: int
    pool: str
    held_out: dict[str, Path] = field(default_factory=dict)
    method: str | None = None


def share_note(drop_p: float, drop: float, min_denominator: float, alpha: float) -> str:
    """Why a recovered share is undefined (empty when defined): the forget drop must be shown > min_denominator."""
    if not math.isfinite(drop_p):
        return "undefined: forget drop has no test"
    if not drop_p < alpha:
        return (f"undefined: forget drop {drop:.3f} not shown > {min_denominator:g} (one-sided paired test "
                f"p = {drop_p:.3g} >= alpha {alpha:g})")
    return ""


def relearn_verdict(gain, margin: float, alpha: float) -> tuple[str, float]:
    """``relearned`` / ``not relearned`` / ``inconclusive`` / ``needs >= N docs`` from per-doc gains."""
    gain = np.asarray(gain, dtype=float)
    up, flat = paired_p(gain, margin, "greater"), paired_p(gain, margin, "less")
    if up < alpha:
        return "relearned", up
    if flat < alpha:
        return "not relearned", flat
    sd = float(np.std(gain, ddof=1)) if gain.size > 1 else math.nan
    n_needed = paired_n(sd, margin, alpha)
    return (needs(n_needed) if gain.size < n_needed else INCONCLUSIVE), min(up, flat)


def cell_row(cell: RelearnCell, options: AnalysisOptions | None = None) -> dict[str, Any]:
    """One table row: three accuracies, two paired differences, the recovered share (or why not), the verdict."""
    opts = options or AnalysisOptions()
    level, n_bootstrap = opts.confidence_level, opts.n_bootstrap
    row: dict[str, Any] = {**({"method": cell.method} if cell.method else {}), "task": cell.task, "n": cell.n,
                           "seed": cell.seed, "k": cell.k, "pool": cell.pool}
    missing = [p for p in PHASES if p not in cell.held_out]
    if missing:
        row["note"] = f"not evaluated: {', '.join(missing)}"
        return row
    per_phase = {p: doc_correct(cell.held_out[p], cell.task) for p in PHASES}
    ids = sorted(set.intersection(*(set(v) for v in per_phase.values())))
    if not ids:
        raise DataError(f"relearning report: no held-out doc of {cell.task} is scored in all of {PHASES}.")
    values = {p: np.array([per_phase[p][i] for i in ids], dtype=float) for p in PHASES}
    n_docs = len(ids)
    row["docs"] = n_docs
    for p in PHASES:
        acc, lo, hi = accuracy_ci(int(values[p].sum()), n_docs, level)
        row |= {f"acc_{p}": acc, f"acc_{p}_lo": lo, f"acc_{p}_hi": hi}
    rng = stable_rng("relearn", *([cell.method] if cell.method else []), cell.task, cell.n, cell.seed, cell.k)
    boot = resampled_means(values, resample_indices(n_docs, n_bootstrap, rng))
    ft, fg, rl = (row[f"acc_{p}"] for p in PHASES)
    b_ft, b_fg, b_rl = (boot[p] for p in PHASES)
    for name, iv in (("forget_drop", Interval.of(ft - fg, b_ft - b_fg, level)),
                     ("relearn_gain", Interval.of(rl - fg, b_rl - b_fg, level)),
                     ("relearn_vs_finetuned", Interval.of(rl - ft, b_rl - b_ft, level))):
        row |= {name: iv.value, f"{name}_lo": iv.low, f"{name}_hi": iv.high}
    row["forget_drop_p"] = paired_p(values["finetuned"] - values["forget"], opts.min_denominator, "greater")
    note = share_note(row["forget_drop_p"], ft - fg, opts.min_denominator, opts.alpha)
    if note:
        row |= {"recovered_share": math.nan, "recovered_share_lo": math.nan, "recovered_share_hi": math.nan}
    else:
        den = b_ft - b_fg
        with np.errstate(divide="ignore", invalid="ignore"):
            draws = np.where(den > 0, (b_rl - b_fg) / np.where(den > 0, den, 1.0), np.nan)
        iv = Interval.of((rl - fg) / (ft - fg), draws, level)
        row |= {"recovered_share": iv.value, "recovered_share_lo": iv.low, "recovered_share_hi": iv.high}
    row["note"] = note
    row["relearn_verdict"], row["relearn_p"] = relearn_verdict(values["relearn"] - values["forget"], opts.margin,
                                                               opts.alpha)
    return row


def _fmt(row: dict[str, Any], name: str) -> str:
    value = row.get(name, math.nan)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "undefined"
    lo, hi = row.get(f"{name}_lo", math.nan), row.get(f"{name}_hi", math.nan)
    interval = f"[{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) and math.isfinite(hi) else "[interval undefined]"
    return f"{value:.3f} {interval}"


def write_relearn_section(cells: Sequence[RelearnCell], out: Path, options: AnalysisOptions | None = None, *,
                          rows: list[dict[str, Any]] | None = None) -> list[str]:
    """Write ``relearn.csv`` / ``relearn.md`` under ``out``; return the report's markdown lines (``rows``: the
    cells' :func:`cell_row` rows, when the caller has them already)."""
    import pandas as pd

    opts = options or AnalysisOptions()
    rows = [cell_row(c, opts) for c in cells] if rows is None else rows
    if not rows:
        return []
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "relearn.csv", index=False)
    columns = [("acc_finetuned", "held-out (fine-tuned)"), ("acc_forget", "held-out (after forget)"),
               ("acc_relearn", "held-out (after relearn)"), ("relearn_gain", "relearn - forget"),
               ("relearn_vs_finetuned", "relearn - fine-tuned"), ("recovered_share", "recovered share")]
    keys = ["task", "n", "seed", "k", "pool", "docs"]
    if any(c.method for c in cells):
        keys.insert(0, "method")
    headers = [{"n": "size", "docs": "N (docs scored)"}.get(k, k) for k in keys] + [h for _, h in columns]
    headers += ["verdict", "note"]
    lines = ["## Relearning", "",
             "Each forgotten model fine-tuned again on gold labels for k docs of its task, then scored on the "
             f"task's held-out split. Accuracies with Wilson {opts.confidence_level:.0%} intervals; differences with "
             f"paired bootstrap {opts.confidence_level:.0%} intervals over docs. Recovered share = (after relearn - "
             "after forget) / (fine-tuned - after forget), defined only when a one-sided paired t-test shows the "
             f"forget drop > {opts.min_denominator:g} at alpha = {opts.alpha:g}. Verdict: relearned = the gain "
             f"(relearn - forget) shown > margin {opts.margin:g}; not relearned = shown < {opts.margin:g}; "
             "'needs >= N docs' = no gain could be shown below the margin at this n.", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells_md = [str(row.get(c, "")) for c in keys]
        verdict = row.get("relearn_verdict", "")
        if verdict and math.isfinite(row.get("relearn_p", math.nan)):
            verdict += f" (p = {row['relearn_p']:.3g})"
        cells_md += [_fmt(row, name) for name, _ in columns] + [verdict, row.get("note", "") or ""]
        lines.append("| " + " | ".join(cells_md) + " |")
    lines += ["", f"Table as CSV: `{(out / 'relearn.csv').name}`.", ""]
    (out / "relearn.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines
