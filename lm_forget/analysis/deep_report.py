"""The report's "How deep is the forgetting?" section: per forget cell, what the attacks get back.

Per forget cell (method, task, forget-set size N, seed), from lm-eval samples files and ``mia_scores.jsonl``:

- **quantization** (stage ``eval_quantized``): accuracy on the forget set and on the held-out split of the
  forgotten task after forgetting, beside the same with the forgotten model's weights quantized (int8, nf4), and
  the fine-tuned model quantized the same way (the equal-precision baseline). Each accuracy has its
  interval (Wilson). The recovered share = (quantized forgotten - forgotten) / (quantized fine-tuned -
  forgotten), paired percentile bootstrap over docs (the same docs in every phase); undefined, with the reason,
  unless a one-sided paired test shows the denominator > ``min_denominator`` at ``alpha``.
- **membership inference** (stage ``mia``): ROC AUC of the LOSS, zlib, min-k% and min-k%++ scores of the forget
  set against non-members, for the pretrained, fine-tuned and forgotten model, each with a bootstrap interval
  (:mod:`lm_forget.analysis.mia`). Two rows per model: ``same_split`` non-members (the forget set's own split, no
  model trained on them: :mod:`lm_forget.run.mia_docs`) and ``held_out`` docs. The pretrained model never saw
  either: its same-split AUC is 0.5 within its interval; its held-out AUC is not where the splits differ in kind.
- **format variants** (stage ``eval_formats``, :mod:`lm_forget.analysis.format_report`): the same docs asked in
  another format, for the pretrained, fine-tuned and forgotten model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lm_forget.analysis.decide import paired_p
from lm_forget.analysis.metrics import accuracy_ci
from lm_forget.analysis.mia import MEMBERS, NON_MEMBERS, SCORES, auc_rows
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.protocol_report import doc_correct
from lm_forget.analysis.report import ci_of, markdown_table
from lm_forget.analysis.sections import SectionData, StudyContext, records, register_section, table_frame
from lm_forget.analysis.uncertainty import Interval, resample_indices, resampled_means, stable_rng
from lm_forget.io import read_jsonl

PARTS = ("forget_set", "held_out")
MIA_PHASES = ("pretrained", "finetuned", "forget")
SCORE_NAMES = {"loss": "LOSS", "zlib": "zlib", "min_k": "min-k%", "min_k_plus_plus": "min-k%++"}


@dataclass
class DeepCell:
    """Where one forget cell's evaluations and membership scores are.

    Attributes:
        cell: the cell id; task, n, seed, method: its parts (seed ``f<fs>s<s>`` on a fine-tune seed axis).
        evals: (part, phase) -> lm-eval output folder; part ``forget_set`` or ``held_out``, phase ``finetuned``,
            ``forget``, ``finetuned_int<b>`` or ``forget_int<b>``.
        mia: phase (pretrained, finetuned, forget) -> its ``mia_scores.jsonl``.
        formats: (part, phase) -> lm-eval output folder scoring the format variants of ``task``; phase
            ``pretrained``, ``finetuned`` or ``forget``.
    """

    cell: str
    task: str
    n: int | None
    seed: int | str
    method: str | None = None
    evals: dict[tuple[str, str], Path] = field(default_factory=dict)
    mia: dict[str, Path] = field(default_factory=dict)
    formats: dict[tuple[str, str], Path] = field(default_factory=dict)

    @property
    def bits(self) -> list[int]:
        return sorted({int(p.rsplit("_int", 1)[1]) for _, p in self.evals if p.startswith("forget_int")},
                      reverse=True)


def _share(values: dict[str, np.ndarray], attack: str, reference: str, opts: AnalysisOptions,
           seed: Sequence[object], base: str = "forget") -> dict[str, Any]:
    """(attack - base) / (reference - base), paired bootstrap; NaN with a note unless the gap is shown."""
    gap = values[reference] - values[base]
    p = paired_p(gap, opts.min_denominator, "greater")
    if not (math.isfinite(p) and p < opts.alpha):
        reason = "no test" if not math.isfinite(p) else f"p = {p:.3g}"
        return {"share": math.nan, "share_lo": math.nan, "share_hi": math.nan,
                "note": f"undefined: {reference.replace('_', ' ')} - {base} gap {gap.mean():.3f} not shown > "
                        f"{opts.min_denominator:g} ({reason})"}
    boot = resampled_means(values, resample_indices(len(gap), opts.n_bootstrap, stable_rng("deep", *seed)))
    den = boot[reference] - boot[base]
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = np.where(den > 0, (boot[attack] - boot[base]) / np.where(den > 0, den, 1.0), np.nan)
    point = (values[attack].mean() - values[base].mean()) / gap.mean()
    iv = Interval.of(point, draws, opts.confidence_level)
    return {"share": iv.value, "share_lo": iv.low, "share_hi": iv.high, "note": ""}


def aligned_correct(folders: dict[str, Path], task: str) -> dict[str, np.ndarray]:
    """Per model, 1.0 / 0.0 for each doc of ``task`` that every model's eval folder scored, in doc-id order."""
    per = {k: doc_correct(v, task) for k, v in folders.items()}
    ids = sorted(set.intersection(*(set(v) for v in per.values())))
    return {k: np.array([per[k][i] for i in ids], dtype=float) for k in per}


def part_values(folders: dict[str, Path | None], task: str, part: str, notes: list[str]
                ) -> dict[str, np.ndarray] | None:
    """:func:`aligned_correct` of ``folders`` on one part (forget set or held-out); None, with a note, when a model
    of them was not evaluated there."""
    missing = [k for k, v in folders.items() if v is None]
    if missing:
        notes.append(f"{part}: not evaluated ({', '.join(missing)})")
        return None
    return aligned_correct(folders, task)  # type: ignore[arg-type]


def accuracy_columns(column: str, correct: np.ndarray, level: float) -> dict[str, float]:
    """``column`` and its interval columns (``_lo``, ``_hi``) of per-doc 1/0 scores (the one accuracy interval)."""
    acc, low, high = accuracy_ci(int(correct.sum()), len(correct), level)
    return {column: acc, f"{column}_lo": low, f"{column}_hi": high}


def share_columns(column: str, share: dict[str, Any]) -> dict[str, float]:
    """``column`` and its interval columns of a :func:`_share`."""
    return {column: share["share"], f"{column}_lo": share["share_lo"], f"{column}_hi": share["share_hi"]}


def quantized_rows(cell: DeepCell, options: AnalysisOptions | None = None) -> list[dict[str, Any]]:
    """One row per attack (after forgetting, then each precision): accuracies, baselines, recovered shares."""
    opts = options or AnalysisOptions()
    head = {**({"method": cell.method} if cell.method else {}), "task": cell.task, "n": cell.n, "seed": cell.seed}
    rows = []
    for attack in ["none", *[f"int{b}" for b in cell.bits]]:
        phase, reference = ("forget", "finetuned") if attack == "none" else (f"forget_{attack}", f"finetuned_{attack}")
        row: dict[str, Any] = {**head, "attack": attack}
        notes = []
        for part in PARTS:
            values = part_values({k: cell.evals.get((part, k)) for k in ("forget", phase, reference)}, cell.task,
                                 part, notes)
            if values is None:
                continue
            row[f"{part}_docs"] = len(values["forget"])
            for name, key in (("acc", phase), ("baseline", reference)):
                row |= accuracy_columns(f"{part}_{name}", values[key], opts.confidence_level)
            if attack != "none":
                share = _share(values, phase, reference, opts, (cell.cell, attack, part))
                row |= share_columns(f"{part}_share", share)
                if share["note"]:
                    notes.append(f"{part} share {share['note']}")
        row["note"] = "; ".join(notes)
        rows.append(row)
    return rows


def _mia_note(phase: str, non_members: str, table: dict[str, dict[str, float]]) -> str:
    if non_members == "same_split" and table["loss"]["held_out_docs"] < 2:
        return (f"undefined: {table['loss']['held_out_docs']} training-split docs lie past the study's pools "
                "(prepared docs: train.jsonl holds only the pool; built docs: lower data.train_size or a method's "
                "retain_size to leave room); read the held_out row")
    off = [SCORE_NAMES[n] for n in SCORES if not table[n]["auc_lo"] <= 0.5 <= table[n]["auc_hi"]]
    if phase != "pretrained" or not off:
        return ""
    if non_members == "held_out":
        return (f"0.5 outside the interval of {', '.join(off)} for a model that saw neither set: the forget set and "
                "held-out docs differ in kind; read the same_split row")
    return (f"0.5 outside the interval of {', '.join(off)} for a model that saw neither set; read the other models "
            "against this row")


def mia_rows(cell: DeepCell, options: AnalysisOptions | None = None) -> list[dict[str, Any]]:
    """One row per model and set of non-members (``same_split``, then ``held_out``): the AUC of each score on the
    cell's task, forget set vs non-members, with intervals."""
    opts = options or AnalysisOptions()
    rows = []
    for phase in MIA_PHASES:
        if phase not in cell.mia:
            continue
        scores = [r for r in read_jsonl(cell.mia[phase]) if r["task"] == cell.task]
        for non_members in NON_MEMBERS:
            chosen = [r for r in scores if r["set"] in (MEMBERS, non_members)]
            table = auc_rows(chosen, level=opts.confidence_level, n_bootstrap=opts.n_bootstrap,
                             seed_parts=(cell.cell, phase, non_members))
            row: dict[str, Any] = {**({"method": cell.method} if cell.method else {}), "task": cell.task,
                                   "n": cell.n, "seed": cell.seed, "model": phase, "non_members": non_members,
                                   "forget_docs": table["loss"]["forget_docs"],
                                   "non_member_docs": table["loss"]["held_out_docs"]}
            for name in SCORES:
                row |= {f"{name}_auc": table[name]["auc"], f"{name}_auc_lo": table[name]["auc_lo"],
                        f"{name}_auc_hi": table[name]["auc_hi"]}
            row["note"] = _mia_note(phase, non_members, table)
            rows.append(row)
    return rows


def _table(headers: list[str], body: list[list[str]]) -> list[str]:
    """The report's markdown table (:func:`lm_forget.analysis.report.markdown_table`) of formatted cells."""
    import pandas as pd

    return markdown_table(pd.DataFrame(body, columns=headers)).splitlines()


def deep_rows(cells: Sequence[DeepCell], options: AnalysisOptions | None = None
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The section's rows: (quantization rows, membership-inference rows) of every cell."""
    opts = options or AnalysisOptions()
    quant = [r for c in cells if c.bits for r in quantized_rows(c, opts)]
    return quant, [r for c in cells for r in mia_rows(c, opts)]


def deep_data(cells: Sequence[DeepCell], options: AnalysisOptions | None = None, *,
              rows: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None) -> SectionData | None:
    """The section's data from its cells (``rows``: their :func:`deep_rows`, when the caller has them): the
    quantization, membership-inference and format tables (``quantized``, ``mia``, ``formats``); None when it has
    no rows."""
    from lm_forget.analysis.format_report import format_rows

    opts = options or AnalysisOptions()
    quant, mia = rows if rows is not None else deep_rows(cells, opts)
    formats = [r for c in cells if c.formats for r in format_rows(c, opts)]
    tables = {name: table_frame(r) for name, r in (("quantized", quant), ("mia", mia), ("formats", formats)) if r}
    return SectionData(tables, findings={"deep": (quant, mia)}) if tables else None


def render_deep(data: SectionData, opts: AnalysisOptions) -> list[str]:
    """The section's text from its tables."""
    from lm_forget.analysis.format_report import format_lines

    level = f"{opts.confidence_level:.0%}"
    quant, mia, formats = (records(data.tables[n]) if n in data.tables else [] for n in ("quantized", "mia", "formats"))
    lines = ["Attacks on each forgotten model that look for the forgotten task after forgetting "
             "(docs/study.md, \"How deep is the forgetting?\").", ""]
    method = any(r.get("method") for r in (*quant, *mia, *formats))
    if quant:
        lines += ["### Quantization", "",
                  "Each forgotten model with its adapter merged and its weights quantized (bitsandbytes int8 / nf4; "
                  "Zhang et al. 2025), scored by lm-eval on the forget set and the held-out split. Baseline: the "
                  f"fine-tuned model at the same precision. Accuracies with Wilson {level} intervals; recovered share "
                  "= (quantized forgotten - forgotten) / (baseline - forgotten), paired bootstrap "
                  f"{level} interval over docs, defined only when a one-sided paired test shows the denominator > "
                  f"{opts.min_denominator:g} at alpha = {opts.alpha:g}. Row `none`: after forgetting, at full "
                  "precision, beside the fine-tuned model.", ""]
        keys = (["method"] if method else []) + ["task", "n", "seed", "attack"]
        headers = [*keys, "forget set", "forget set: baseline", "recovered share (forget set)", "held-out",
                   "held-out: baseline", "recovered share (held-out)", "note"]
        body = [[str(r.get(k, "")) for k in keys] + [
            ci_of(r, "forget_set_acc"), ci_of(r, "forget_set_baseline"),
            "—" if r["attack"] == "none" else ci_of(r, "forget_set_share"), ci_of(r, "held_out_acc"),
            ci_of(r, "held_out_baseline"), "—" if r["attack"] == "none" else ci_of(r, "held_out_share"),
            r.get("note", "")] for r in quant]
        lines += [*_table(headers, body), ""]
    if mia:
        lines += ["### Membership inference", "",
                  "ROC AUC of each score (open-unlearning's definitions) separating the forget set (label 0) "
                  "from non-members of the same task (label 1): 1 = the forget set still looks like training "
                  f"data, 0.5 = indistinguishable. Percentile bootstrap {level} intervals (scipy). Non-members "
                  "`same_split`: docs of the forget set's own split that no model of the study trained on (the "
                  "same distribution); `held_out`: the held-out split, which on some sources differs in kind. "
                  "The pretrained model never saw either: its AUC is the test's baseline.", ""]
        keys = (["method"] if method else []) + ["task", "n", "seed", "model", "non_members"]
        headers = [*keys, "docs (forget / non-members)", *(f"{SCORE_NAMES[s]} AUC" for s in SCORES), "note"]
        body = [[str(r.get(k, "")) for k in keys] + [f"{r['forget_docs']} / {r['non_member_docs']}"] +
                [ci_of(r, f"{s}_auc") for s in SCORES] + [r.get("note", "")] for r in mia]
        lines += [*_table(headers, body), ""]
    if formats:
        lines += format_lines(formats, opts, method)
    return lines


@register_section("deep", order=70, title="How deep is the forgetting?", render=render_deep)
def deep_section(ctx: StudyContext) -> SectionData | None:
    """Membership inference, quantization and format variants of every forgotten model (stages ``mia``,
    ``eval_quantized``, ``eval_formats``)."""
    if not {"mia", "eval_quantized", "eval_formats"} & set(ctx.config.stages):
        return None
    from lm_forget.run.deep_steps import deep_cells

    return deep_data(deep_cells(ctx.plan), ctx.options)
