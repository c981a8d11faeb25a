"""The "Format variants" table of "How deep is the forgetting?": did the forgetting carry over to other formats?

Per forget cell and format variant (:mod:`lm_forget.data.variants`), on the forget set and on the held-out split
of the forgotten task, from lm-eval samples files: the accuracy of the pretrained, the fine-tuned and the forgotten
model on the variant task, each with its Wilson interval, and the **kept share** = (forgotten -
pretrained) / (fine-tuned - pretrained): the share of the fine-tuning gain on that format that survives forgetting
(0: the forgetting carried over fully; 1: not at all). Paired percentile bootstrap over docs (the variants keep the
suite's doc ids, so every model is scored on the same docs); undefined, with the reason, unless a one-sided paired
test shows the fine-tuning gain > ``min_denominator`` — a format the fine-tuned model does not answer better than
the pretrained one has no gain there to forget.
"""

from __future__ import annotations

from typing import Any

from lm_forget.analysis.options import AnalysisOptions

PHASES = ("pretrained", "finetuned", "forget")


def format_rows(cell: Any, options: AnalysisOptions | None = None) -> list[dict[str, Any]]:
    """One row per format variant of ``cell`` (a ``DeepCell``): the three models' accuracies and the kept share."""
    from lm_forget.analysis.deep_report import PARTS, _share, accuracy_columns, part_values, share_columns
    from lm_forget.data.variants import variant_names, variant_task_name

    opts = options or AnalysisOptions()
    head = {**({"method": cell.method} if cell.method else {}), "task": cell.task, "n": cell.n, "seed": cell.seed}
    rows = []
    for variant in variant_names():
        task = variant_task_name(variant, cell.task)
        row: dict[str, Any] = {**head, "format": variant}
        notes = []
        for part in PARTS:
            values = part_values({p: cell.formats.get((part, p)) for p in PHASES}, task, part, notes)
            if values is None:
                continue
            row[f"{part}_docs"] = len(values["forget"])
            for phase in PHASES:
                row |= accuracy_columns(f"{part}_{phase}", values[phase], opts.confidence_level)
            share = _share(values, "forget", "finetuned", opts, (cell.cell, "format", variant, part), base="pretrained")
            row |= share_columns(f"{part}_kept", share)
            if share["note"]:
                notes.append(f"{part} kept share {share['note']}")
        row["note"] = "; ".join(notes)
        rows.append(row)
    return rows


def format_lines(rows: list[dict[str, Any]], options: AnalysisOptions, method: bool) -> list[str]:
    """The table's markdown lines (the rows go to ``formats.csv`` with the rest of the section's tables)."""
    from lm_forget.analysis.deep_report import _table
    from lm_forget.analysis.report import ci_of

    level = f"{options.confidence_level:.0%}"
    lines = ["### Format variants", "",
             "The forgotten task's docs (same ids) asked in another format, scored by lm-eval (`letters`: options "
             "as A./B., the letter scored; `swapped`: options in the other order; `instruction`: a neutral "
             "instruction first; Joshi et al. 2024, Lynch et al. 2024). Accuracies with Wilson "
             f"{level} intervals; kept share = (forgotten - pretrained) / (fine-tuned - pretrained), the share of "
             "the fine-tuning gain on that format left after forgetting (0: the forgetting carried over), paired "
             f"bootstrap {level} interval, defined only when a one-sided paired test shows the gain > "
             f"{options.min_denominator:g} at alpha = {options.alpha:g}.", ""]
    keys = (["method"] if method else []) + ["task", "n", "seed", "format"]
    headers = [*keys, *(f"{part}: {p}" for part in ("forget set", "held-out")
                        for p in ("pretrained", "fine-tuned", "forgotten", "kept share")), "note"]
    body = [[str(r.get(k, "")) for k in keys] + [
        ci_of(r, f"{part}_{p}") for part in ("forget_set", "held_out")
        for p in ("pretrained", "finetuned", "forget", "kept")] + [r.get("note", "")] for r in rows]
    return [*lines, *_table(headers, body), ""]
