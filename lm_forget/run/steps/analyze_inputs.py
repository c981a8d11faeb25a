"""The analyze step's inputs: lm-eval phase folders, features and the cross-task matrix of one cell group.

``analyze`` compares three lm-eval folders (pretrained, fine-tuned, forget) over the same tasks. A study has
one forget model per cell, so for each ([method,] forget-set size, seed) these folders are assembled from the
step outputs: the forget phase is the matrix *diagonal* (task A as scored by the model that forgot A), the
matrix is every (A, B) cell.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from lm_forget.errors import DataError
from lm_forget.formats import lm_eval_run, results_timestamp, samples_file
from lm_forget.run.graph import Step


def _copy_task(src_folder: Path, task: str, dest: Path, tag: str) -> None:
    """Copy one task's results and samples out of an lm-eval run folder into ``dest`` (a phase folder).

    The results JSON keeps only ``task`` so several runs (one per forget cell) can share a folder:
    lm-eval's readers pair ``results_<ts>.json`` with ``samples_<task>_<ts>.jsonl`` by timestamp.
    """
    results_path, results = lm_eval_run(src_folder)
    samples = samples_file(results_path, task)
    if task not in results.get("configs", {}) or not samples.is_file():
        raise DataError(f"{results_path}: no results/samples for task {task!r}; delete {src_folder.parent} to "
                        "rerun that evaluation.")
    kept = dict(results)
    for section in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "task_hashes"):
        if isinstance(results.get(section), dict):
            kept[section] = {k: v for k, v in results[section].items() if k == task}
    new_ts = f"{results_timestamp(results_path)}-{tag}"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"results_{new_ts}.json").write_text(json.dumps(kept, indent=2, default=str), encoding="utf-8")
    shutil.copyfile(samples, dest / f"samples_{task}_{new_ts}.jsonl")


def _scores(step: Step) -> dict[str, dict[str, float]]:
    return step.done_record().get("scores", {})


def assemble_inputs(plan: Any, inputs: Path, n: int | None, seed: int, method: str | None = None,
                    finetune_seed: int | None = None) -> dict[str, Path]:
    """Phase folders (pretrained, finetuned, forget diagonal), features and matrix for one [method,] size,
    [fine-tune seed,] seed."""
    from lm_forget.run.cells import Cell, finetuned_eval_name, finetuned_features_name, finetuned_for

    by_name = plan.by_name
    config = plan.config
    cells = {task: by_name[f"eval_forget/{Cell(method, task, n, seed, finetune_seed).id}"]
             for task in config.tasks.forget}
    diag = [t for t in config.tasks.forget if t in config.tasks.eval]
    if not diag:
        raise DataError("analyze needs tasks that are both forgotten and evaluated (tasks.forget and tasks.eval "
                        "share none); the per-task analysis scores task A after forgetting A.")
    folders = {p: inputs / p for p in ("pretrained", "finetuned", "forget")}
    pre = by_name.get("eval_pretrained")
    if pre is None:
        raise DataError("analyze needs the eval_pretrained stage.")
    # per forgotten task, the model it was forgotten from: its own with finetune.per_task, else the mixture's;
    # no fine-tune stage: the base model is the "fine-tuned" one
    fine = {task: by_name.get(finetuned_eval_name(finetuned_for(config, task), finetune_seed)) or pre
            for task in config.tasks.forget}
    for i, task in enumerate(diag):
        _copy_task(pre.output, task, folders["pretrained"], f"{i}")
        _copy_task(fine[task].output, task, folders["finetuned"], f"{i}")
        _copy_task(cells[task].output, task, folders["forget"], f"{i}")
    found: dict[str, Path] = dict(folders)
    roles: dict[str, list[Path]] = {}  # role -> features.json of its steps
    # the features of this fine-tune seed's models only
    finetuned_features = {finetuned_features_name(finetuned_for(config, t), finetune_seed) for t in config.tasks.forget}
    for s in (s for s in plan.steps if s.kind == "features"):
        role = s.settings["phase"]
        if role == "finetuned" and s.name not in finetuned_features:
            continue  # another fine-tune seed's model
        if s.cell is not None:
            if not s.cell.matches(method=method, n=n, seed=seed, finetune_seed=finetune_seed):
                continue  # another method, size or seed
            role = f"forget-{s.cell.task}"
        roles.setdefault(role, []).append(s.output / "features.json")
    for role, sources in roles.items():
        dest = inputs / "features" / role / "features.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if len(sources) == 1:
            shutil.copyfile(sources[0], dest)
        else:  # per-task fine-tuned models: one record, each task from its own model
            _merge_features(sources, dest)
    if roles:
        found["features"] = inputs / "features"
    if config.eval.forget_scope == "all" and (len(config.tasks.forget) > 1 or len(config.tasks.eval) > 1):
        scores = {s.name: _scores(s) for s in fine.values()}  # one read per fine-tuned model
        found["matrix"] = write_matrix_csv(inputs / "matrix", cells, {t: scores[s.name] for t, s in fine.items()})
    return found


def _merge_features(sources: list[Path], dest: Path) -> None:
    """One features record at ``dest`` holding the tasks (and probe rows) of every record in ``sources``."""
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sources]
    merged = {**records[0], "tasks": {}, "probes": []}
    for record in records:
        merged["tasks"].update(record["tasks"])
        merged["probes"] += record.get("probes", [])
    dest.write_text(json.dumps(merged, indent=2), encoding="utf-8")


def write_matrix_csv(folder: Path, cells: dict[str, Step], finetuned: dict[str, dict[str, Any]]) -> Path:
    """``matrix.csv`` (trained_task, eval_task, acc_forget, acc_finetuned, n) from the cells' eval results.

    ``finetuned``: per trained task, the scores of the model it was forgotten from (the same mixture model for
    every row, or, with ``finetune.per_task``, each row's own fine-tuned model).
    """
    import pandas as pd

    rows = []
    for trained, step in cells.items():
        results_path, results = lm_eval_run(step.output)
        for task, acc in _scores(step).items():
            rows.append({"trained_task": trained, "eval_task": task, "acc_forget": acc.get("acc", math.nan),
                         "acc_finetuned": finetuned.get(trained, {}).get(task, {}).get("acc", math.nan),
                         "n": (results.get("n-samples", {}).get(task) or {}).get("effective", math.nan)})
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["trained_task", "eval_task", "acc_forget", "acc_finetuned", "n"]).to_csv(
        folder / "matrix.csv", index=False)
    return folder
