"""The report's relearning section: does a few-example gold-label fine-tune bring a forgotten task back?

Per forget cell (task, forget-set size N, seed) and relearning-set size k, from lm-eval samples files of
the held-out split of the forgotten task:

- accuracy of the fine-tuned, the forgotten and the relearned model, each with a Wilson interval
  (at ``confidence_level``, as every interval here);
- the paired differences relearned - forgotten and relearned - fine-tuned (same docs in every phase),
  with a paired bootstrap interval over docs;
- the recovered share ``(acc_relearn - acc_forget) / (acc_finetuned - acc_forget)``, defined only when
  the denominator (the forget drop) is shown above ``min_denominator`` (one-sided paired test at ``alpha``,
  :func:`lm_forget.analysis.decide.paired_p`). Otherwise NaN, with the reason, as forget ratios are;
- the verdict ``relearned`` (the gain relearn - forget shown > ``margin``), ``not relearned`` (shown < margin),
  ``inconclusive``, or ``needs >= N docs`` when no gain could be shown < margin at this n (one-sided paired
  tests at ``alpha``, the one margin of :class:`AnalysisOptions`).

With the control (``relearn.control``: the pretrained model relearned on the same docs with the same settings,
Feng et al., arXiv 2506.00688), also on the same docs:

- accuracy of the pretrained model and of the control (Wilson intervals);
- ``control_gain`` = control - pretrained: what the relearning set teaches a model that never learned nor forgot;
- ``net_gain`` = (relearn - forget) - (control - pretrained): the recovery net of the control, and
  ``net_recovered_share`` = net_gain / (fine-tuned - forget) (defined as the recovered share is); paired
  bootstrap intervals over the same docs and resamples as the columns above;
- ``control_verdict`` (``taught`` / ``not taught`` / ...) and ``net_verdict`` (``relearned`` / ...), the same
  one-sided paired tests on per-doc control gains and per-doc net gains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lm_forget.analysis.decide import INCONCLUSIVE, needs, paired_n, paired_p
from lm_forget.analysis.metrics import accuracy_ci
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.protocol_report import doc_correct
from lm_forget.analysis.report import ci_of
from lm_forget.analysis.sections import SectionData, StudyContext, records, register_section, table_frame
from lm_forget.analysis.uncertainty import Interval, resample_indices, resampled_means, stable_rng
from lm_forget.errors import DataError

PHASES = ("finetuned", "forget", "relearn")
CONTROL_PHASES = ("pretrained", "control")  # the control's relearning and the model it starts from


@dataclass
class RelearnCell:
    """Where one relearned model's held-out evaluation and its references are.

    Attributes:
        task: the forgotten (and relearned) task.
        n: forget-set size.
        seed: forget seed (``f<fine-tune seed>s<seed>`` on a fine-tune seed axis).
        k: relearning-set size.
        pool: where the k docs came from (``forget_set``, ``held_in`` or ``unrelated``).
        method: the forgetting method's id on a ``forget.methods`` axis (None: one method).
        held_out: phase (finetuned, forget, relearn; with the control: pretrained, control) -> lm-eval output
            folder scoring the held-out split.
        unrelated_task: pool ``unrelated``: the task whose docs were relearned.
    """

    task: str
    n: int | None
    seed: int | str
    k: int
    pool: str
    held_out: dict[str, Path] = field(default_factory=dict)
    method: str | None = None
    unrelated_task: str | None = None


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
                           "seed": cell.seed, "k": cell.k, "pool": cell.pool,
                           **({"unrelated_task": cell.unrelated_task} if cell.unrelated_task else {})}
    missing = [p for p in PHASES if p not in cell.held_out]
    if missing:
        row["note"] = f"not evaluated: {', '.join(missing)}"
        return row
    phases = PHASES + tuple(p for p in CONTROL_PHASES if p in cell.held_out)
    per_phase = {p: doc_correct(cell.held_out[p], cell.task) for p in phases}
    ids = sorted(set.intersection(*(set(v) for v in per_phase.values())))
    if not ids:
        raise DataError(f"relearning report: no held-out doc of {cell.task} is scored in all of {phases}.")
    values = {p: np.array([per_phase[p][i] for i in ids], dtype=float) for p in phases}
    n_docs = len(ids)
    row["docs"] = n_docs
    for p in phases:
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
    if any(p in cell.held_out for p in CONTROL_PHASES):
        row |= _control_columns(row, values, boot, opts, [p for p in CONTROL_PHASES if p not in cell.held_out])
    return row


TAUGHT = {"relearned": "taught", "not relearned": "not taught"}  # the control's verdict words


def _control_columns(row: dict[str, Any], values: dict[str, np.ndarray], boot: dict[str, np.ndarray],
                     opts: AnalysisOptions, missing: list[str]) -> dict[str, Any]:
    """The control's columns: its gain over the pretrained model, and the recovery net of that gain."""
    names = ("control_gain", "net_gain", "net_recovered_share")
    if missing:
        return {**{f"{n}{s}": math.nan for n in names for s in ("", "_lo", "_hi")},
                "control_note": f"control not evaluated: {', '.join(missing)}"}
    level = opts.confidence_level
    gain = values["control"] - values["pretrained"]
    net = values["relearn"] - values["forget"] - gain
    b_gain = boot["control"] - boot["pretrained"]
    b_net = boot["relearn"] - boot["forget"] - b_gain
    out: dict[str, Any] = {"control_note": ""}
    for name, value, draws in (("control_gain", float(gain.mean()), b_gain), ("net_gain", float(net.mean()), b_net)):
        iv = Interval.of(value, draws, level)
        out |= {name: iv.value, f"{name}_lo": iv.low, f"{name}_hi": iv.high}
    share = (math.nan, math.nan, math.nan)
    if math.isfinite(row["recovered_share"]):  # the same condition as the recovered share's
        den = boot["finetuned"] - boot["forget"]
        with np.errstate(divide="ignore", invalid="ignore"):
            draws = np.where(den > 0, b_net / np.where(den > 0, den, 1.0), np.nan)
        iv = Interval.of(out["net_gain"] / (row["acc_finetuned"] - row["acc_forget"]), draws, level)
        share = (iv.value, iv.low, iv.high)
    out |= dict(zip(("net_recovered_share", "net_recovered_share_lo", "net_recovered_share_hi"), share, strict=True))
    verdict, out["control_p"] = relearn_verdict(gain, opts.margin, opts.alpha)
    out["control_verdict"] = TAUGHT.get(verdict, verdict)
    out["net_verdict"], out["net_p"] = relearn_verdict(net, opts.margin, opts.alpha)
    return out


def relearn_data(rows: list[dict[str, Any]]) -> SectionData | None:
    """The section's data from the cells' :func:`cell_row` rows (table ``relearn``); None without rows."""
    return SectionData({"relearn": table_frame(rows)}, findings={"relearn": rows}) if rows else None


def render_relearn(data: SectionData, opts: AnalysisOptions) -> list[str]:
    """The section's text from its ``relearn`` table."""
    rows = records(data.tables["relearn"])
    columns = [("acc_finetuned", "held-out (fine-tuned)"), ("acc_forget", "held-out (after forget)"),
               ("acc_relearn", "held-out (after relearn)"), ("relearn_gain", "relearn - forget"),
               ("relearn_vs_finetuned", "relearn - fine-tuned"), ("recovered_share", "recovered share")]
    keys = ["task", "n", "seed", "k", "pool", "docs"]
    if any(r.get("unrelated_task") for r in rows):
        keys.insert(keys.index("pool") + 1, "unrelated_task")
    if any(r.get("method") for r in rows):
        keys.insert(0, "method")
    lines = ["Each forgotten model fine-tuned again on gold labels for k docs (pool forget_set: of its forget set; "
             "held_in: of its task, after the forget set; unrelated: of unrelated_task, neither forgotten nor "
             "evaluated), then scored on the task's held-out split. Accuracies with Wilson "
             f"{opts.confidence_level:.0%} intervals; differences with "
             f"paired bootstrap {opts.confidence_level:.0%} intervals over docs. Recovered share = (after relearn - "
             "after forget) / (fine-tuned - after forget), defined only when a one-sided paired t-test shows the "
             f"forget drop > {opts.min_denominator:g} at alpha = {opts.alpha:g}. Verdict: relearned = the gain "
             f"(relearn - forget) shown > margin {opts.margin:g}; not relearned = shown < {opts.margin:g}; "
             "'needs >= N docs' = no gain could be shown below the margin at this n.", "",
             *_table(rows, keys, columns, ("relearn_verdict", "relearn_p"), "note")]
    if "control_gain" in data.tables["relearn"]:
        control = [("acc_pretrained", "held-out (pretrained)"), ("acc_control", "held-out (control)"),
                   ("control_gain", "control - pretrained"), ("relearn_gain", "relearn - forget"),
                   ("net_gain", "net gain"), ("net_recovered_share", "net recovered share")]
        lines += ["", "### Net of the control", "",
                  "The control: the pretrained model (never fine-tuned, never forgotten) relearned on the same k "
                  "docs with the same settings and seed, scored on the same held-out docs. Control gain = control "
                  "- pretrained (what the relearning set teaches by itself); net gain = (relearn - forget) - "
                  "(control - pretrained), the knowledge that came back beyond that; net recovered share = net "
                  "gain / (fine-tuned - after forget), defined as the recovered share is. Paired bootstrap "
                  f"{opts.confidence_level:.0%} intervals (the resamples of the table above). Control verdict: "
                  f"taught = the control gain shown > margin {opts.margin:g}; net verdict: relearned = the net gain "
                  f"shown > {opts.margin:g} (one-sided paired tests at alpha = {opts.alpha:g}).", "",
                  *_table(rows, keys, control, ("control_verdict", "control_p"), "control_note",
                          ("net_verdict", "net_p"))]
    return lines


@register_section("relearn", order=50, title="Relearning", render=render_relearn)
def relearn_section(ctx: StudyContext) -> SectionData | None:
    """Every relearned model beside its fine-tuned and forgotten model (stage ``eval_relearn``)."""
    if "eval_relearn" not in ctx.config.stages:
        return None
    from lm_forget.run.relearn_steps import relearn_cells

    return relearn_data([cell_row(c, ctx.options) for c in relearn_cells(ctx.plan)])


def _verdict(row: dict[str, Any], name: str, p: str) -> str:
    verdict = row.get(name, "")
    if not isinstance(verdict, str):
        return ""
    if verdict and math.isfinite(row.get(p, math.nan)):
        verdict += f" (p = {row[p]:.3g})"
    return verdict


def _table(rows: list[dict[str, Any]], keys: list[str], columns: list[tuple[str, str]], verdict: tuple[str, str],
           note: str, *more: tuple[str, str]) -> list[str]:
    """A markdown table: the key columns, the value columns with intervals, the verdicts and the note."""
    names = {"relearn_verdict": "verdict", "control_verdict": "control verdict", "net_verdict": "net verdict",
             "control_note": "note"}
    headers = [{"n": "size", "docs": "N (docs scored)"}.get(k, k) for k in keys] + [h for _, h in columns]
    headers += [names[v] for v, _ in (verdict, *more)] + [names.get(note, note)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells_md = [str(row.get(c, "")) for c in keys] + [ci_of(row, name) for name, _ in columns]
        cells_md += [_verdict(row, v, p) for v, p in (verdict, *more)] + [row.get(note, "") or ""]
        lines.append("| " + " | ".join(cells_md) + " |")
    return lines
