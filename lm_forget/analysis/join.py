"""Join the per-doc records of the three phases on (task, split, doc id)."""

from __future__ import annotations

import logging

from lm_forget.analysis.samples import PhaseSamples
from lm_forget.errors import DataError

log = logging.getLogger(__name__)

PHASES = ("pretrained", "finetuned", "forget")
KEY = ["task", "split", "doc_id"]


def check_tasks(phases: dict[str, PhaseSamples]) -> list[str]:
    """The common task list; a DataError naming the folders when the phases evaluated different tasks."""
    sets = {name: set(p.tasks) for name, p in phases.items()}
    common = set.intersection(*sets.values())
    problems = []
    for name, tasks in sets.items():
        extra = sorted(tasks - common)
        if extra:
            problems.append(f"{name} ({phases[name].root}) has {', '.join(extra)}")
    if problems:
        raise DataError(
            "the phases evaluated different tasks: " + "; ".join(problems)
            + ". Evaluate every phase on the same --tasks (or drop the extra results files)."
        )
    return sorted(common)


def join_phases(phases: dict[str, PhaseSamples]):
    """One row per doc present in every phase: ``correct_<phase>``, ``p_gold_<phase>``, label, n_choices."""
    missing = [p for p in PHASES if p not in phases]
    if missing:
        raise DataError(f"missing phase(s) {', '.join(missing)}: analyze needs pretrained, finetuned and forget")
    check_tasks(phases)
    joined = None
    for name in PHASES:
        frame = phases[name].frame()
        dup = frame.duplicated(KEY)
        if dup.any():
            first = frame[dup].iloc[0]
            raise DataError(
                f"{phases[name].files.get(first['task'], phases[name].root)}: doc {first['doc_id']} appears twice; "
                "the samples of two runs were mixed in one folder"
            )
        frame = frame.rename(columns={"correct": f"correct_{name}", "p_gold": f"p_gold_{name}",
                                      "loglik": f"loglik_{name}"})
        if joined is None:
            joined = frame
            continue
        frame = frame.drop(columns=["n_choices"])
        merged = joined.merge(frame, on=KEY, how="inner", suffixes=("", "_other"))
        bad = merged[merged["label"] != merged["label_other"]]
        if len(bad):
            row = bad.iloc[0]
            raise DataError(
                f"{phases[name].files.get(row['task'], phases[name].root)}: doc {row['doc_id']} has label "
                f"{row['label_other']} but {row['label']} in another phase; the phases used different task data"
            )
        lost = len(joined) - len(merged)
        if lost:
            log.warning("%d docs of earlier phases are not in %s (%s); analysing the %d common docs",
                        lost, name, phases[name].root, len(merged))
        joined = merged.drop(columns=["label_other"])
    if joined is None or joined.empty:
        raise DataError("the phases share no docs (different task data or --limit windows); nothing to analyse")
    for name in PHASES:
        joined[f"correct_{name}"] = joined[f"correct_{name}"].astype(bool)
    joined["forgotten"] = joined["correct_finetuned"] & ~joined["correct_forget"]
    return joined.sort_values(KEY).reset_index(drop=True)
