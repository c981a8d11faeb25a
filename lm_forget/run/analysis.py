"""Features, analyze and push steps: thin calls into ``lm_forget.analysis`` and ``lm_forget.hub``.

``analyze`` compares three lm-eval folders (pretrained, fine-tuned, forget) over the same tasks. A
study has one forget model per cell, so for each (forget-set size, seed) the runner assembles those
folders from the step outputs: the forget phase is the matrix *diagonal* (task A as scored by the model
that forgot A), the matrix is every (A, B) cell. Seeds are then summarized: mean and 95% t-interval of
each task's forget ratio across seeds.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

from lm_forget.errors import DataError
from lm_forget.run.atomic import atomic_dir
from lm_forget.run.graph import Step

log = logging.getLogger(__name__)


def run_features(step: Step, ctx: Any) -> dict[str, Any]:
    """Hidden-state variance (and, for probe studies, probe) features of one model."""
    from lm_forget.analysis.api import extract_features

    config = ctx.config
    ref = ctx.ref_for(step)
    with atomic_dir(step.output) as tmp:
        extract_features(ref, data=config.data, tasks=step.settings["tasks"], layer=step.settings["layer"],
                         out=tmp, split=step.settings["split"], task_dirs=[str(p) for p in config.task_dir_paths],
                         device=config.eval.device, role=step.settings["phase"], limit=step.settings["limit"],
                         probes=step.settings.get("probes", False))
    return {"features": str(step.output / "features.json")}


# ------------------------------------------------------------------ assembling analyze's inputs


def _lm_eval_run(folder: Path) -> tuple[Path, dict[str, Any]]:
    """(results file, its JSON) of one eval step's output."""
    from lm_forget.run.evaluate import find_results_file

    path = find_results_file(folder)
    return path, json.loads(path.read_text(encoding="utf-8"))


def _copy_task(src_folder: Path, task: str, dest: Path, tag: str) -> None:
    """Copy one task's results and samples out of an lm-eval run folder into ``dest`` (a phase folder).

    The results JSON keeps only ``task`` so several runs (one per forget cell) can share a folder:
    lm-eval's readers pair ``results_<ts>.json`` with ``samples_<task>_<ts>.jsonl`` by timestamp.
    """
    results_path, results = _lm_eval_run(src_folder)
    ts = results_path.stem[len("results_"):]
    samples = results_path.parent / f"samples_{task}_{ts}.jsonl"
    if task not in results.get("configs", {}) or not samples.is_file():
        raise DataError(f"{results_path}: no results/samples for task {task!r}; delete {src_folder.parent} to "
                        "rerun that evaluation.")
    kept = dict(results)
    for section in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "task_hashes"):
        if isinstance(results.get(section), dict):
            kept[section] = {k: v for k, v in results[section].items() if k == task}
    new_ts = f"{ts}-{tag}"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"results_{new_ts}.json").write_text(json.dumps(kept, indent=2, default=str), encoding="utf-8")
    shutil.copyfile(samples, dest / f"samples_{task}_{new_ts}.jsonl")


def _scores(step: Step) -> dict[str, dict[str, float]]:
    return step.done_record().get("scores", {})


def assemble_inputs(plan: Any, inputs: Path, n: int | None, seed: int, method: str | None = None) -> dict[str, Path]:
    """Phase folders (pretrained, finetuned, forget diagonal), features and matrix for one [method,] size, seed."""
    from lm_forget.run.graph import cell_id, cell_parts

    by_name = plan.by_name
    config = plan.config
    cells = {task: by_name[f"eval_forget/{cell_id(task, n, seed, method)}"] for task in config.tasks.forget}
    diag = [t for t in config.tasks.forget if t in config.tasks.eval]
    if not diag:
        raise DataError("analyze needs tasks that are both forgotten and evaluated (tasks.forget and tasks.eval "
                        "share none); the per-task analysis scores task A after forgetting A.")
    folders = {p: inputs / p for p in ("pretrained", "finetuned", "forget")}
    pre = by_name.get("eval_pretrained")
    fine = by_name.get("eval_finetuned") or pre  # no fine-tune stage: the base model is the "fine-tuned" one
    if pre is None:
        raise DataError("analyze needs the eval_pretrained stage.")
    for i, task in enumerate(diag):
        _copy_task(pre.output, task, folders["pretrained"], f"{i}")
        _copy_task(fine.output, task, folders["finetuned"], f"{i}")
        _copy_task(cells[task].output, task, folders["forget"], f"{i}")
    found: dict[str, Path] = dict(folders)
    features = [s for s in plan.steps if s.kind == "features"]
    if features:
        for s in features:
            role = s.settings["phase"]
            if s.cell is not None:
                cell_method, cell_task, *size_seed = cell_parts(s.cell)
                want = cell_parts(cell_id("x", n, seed, method))
                if (cell_method, *size_seed) != (want[0], *want[2:]):  # another method, size or seed
                    continue
                role = f"forget-{cell_task}"
            dest = inputs / "features" / role
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(s.output / "features.json", dest / "features.json")
        found["features"] = inputs / "features"
    if config.eval.forget_scope == "all" and (len(config.tasks.forget) > 1 or len(config.tasks.eval) > 1):
        found["matrix"] = write_matrix_csv(inputs / "matrix", cells, _scores(fine))
    return found


def write_matrix_csv(folder: Path, cells: dict[str, Step], finetuned: dict[str, Any]) -> Path:
    """``matrix.csv`` (trained_task, eval_task, acc_forget, acc_finetuned, n) from the cells' eval results."""
    import pandas as pd

    rows = []
    for trained, step in cells.items():
        results_path, results = _lm_eval_run(step.output)
        for task, acc in _scores(step).items():
            rows.append({"trained_task": trained, "eval_task": task, "acc_forget": acc.get("acc", math.nan),
                         "acc_finetuned": finetuned.get(task, {}).get("acc", math.nan),
                         "n": (results.get("n-samples", {}).get(task) or {}).get("effective", math.nan)})
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["trained_task", "eval_task", "acc_forget", "acc_finetuned", "n"]).to_csv(
        folder / "matrix.csv", index=False)
    return folder


def _analysis_options(config: Any):
    from lm_forget.analysis.api import AnalysisOptions

    options = dict(config.analysis.options)
    if config.forget.label_mode == "flip" and not config.forget.methods:
        options.setdefault("outcome", "forget_ratio_flipped")
    if "formats" in options:
        options["formats"] = tuple(options["formats"])
    return AnalysisOptions(**options)


def seed_summary(reports: dict[tuple[Any, int], Path], out: Path, outcome: str) -> Path | None:
    """Mean and 95% t-interval across seeds of each task's outcome (per forget-set size)."""
    import pandas as pd
    from scipy import stats

    frames = []
    for key, report in reports.items():  # (n, seed), or (method, n, seed) with a method axis
        method, n, seed = key if len(key) == 3 else (None, *key)
        path = report / "metrics.csv"
        if path.is_file():
            frame = pd.read_csv(path)
            frames.append(frame.assign(num_examples=n, seed=seed, **({"method": method} if method else {})))
    if not frames:
        return None
    table = pd.concat(frames, ignore_index=True)
    by_method = "method" in table.columns
    rows = []
    for keys, group in table.groupby(["method"] * by_method + ["num_examples", "task", "split"]):
        *method_key, n, task, split = keys
        values = group[outcome].dropna().to_numpy(dtype=float)
        mean = float(values.mean()) if len(values) else math.nan
        if len(values) > 1:
            sem = stats.sem(values)
            low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=sem) if sem > 0 else (mean, mean)
        else:
            low = high = math.nan
        rows.append({**dict(zip(["method"], method_key, strict=False)),
                     "num_examples": n, "task": task, "split": split, "n_seeds": len(values), f"{outcome}_mean": mean,
                     "ci95_low": low, "ci95_high": high})
    summary = pd.DataFrame(rows)
    summary.to_csv(out / "seeds_summary.csv", index=False)
    (out / "seeds_summary.md").write_text(summary.to_markdown(index=False) + "\n", encoding="utf-8")
    return out / "seeds_summary.csv"


def run_analysis(step: Step, ctx: Any) -> dict[str, Any]:
    """``analyze`` once per (forget-set size, seed), then the across-seed summary and an index page."""
    from lm_forget.analysis.api import analyze

    plan, config = ctx.plan, ctx.config
    options = _analysis_options(config)
    from lm_forget.run.graph import method_axis

    reports: dict[tuple[Any, ...], Path] = {}
    with atomic_dir(step.output) as tmp:
        for spec in method_axis(config):  # one analysis per cell group: [method,] size, seed
            method = spec.id if spec is not None else None
            for n in config.forget_sizes:
                for seed in config.seeds:
                    label = f"{method + '-' if method else ''}n{n}-s{seed}"
                    # inputs live beside the output (rebuilt on every attempt), so reports cite real paths
                    folder = step.dir / "inputs" / label
                    shutil.rmtree(folder, ignore_errors=True)
                    inputs = assemble_inputs(plan, folder, n, seed, method)
                    report = analyze(pretrained=inputs["pretrained"], finetuned=inputs["finetuned"],
                                     forget=inputs["forget"], out=tmp / label, features=inputs.get("features"),
                                     matrix=inputs.get("matrix"), options=options)
                    reports[(method, n, seed) if method else (n, seed)] = Path(report)
        summary = seed_summary(reports, tmp, options.outcome)
        methods = (f"methods: {', '.join(m.id for m in config.forget.method_specs)}" if config.forget.methods
                   else f"label mode: {config.forget.label_mode}")
        lines = [f"# {config.name}", "", f"Model: `{config.model.name_or_path}`; {methods}; seeds: {config.seeds}; "
                 f"forget-set sizes: {config.forget_sizes}.", ""]
        lines += [f"- [{key[0] + ', ' if len(key) == 3 else ''}forget-set size {key[-2]}, seed {key[-1]}]"
                  f"({label.relative_to(tmp)}/index.md)" for key, label in reports.items()]
        if summary is not None:
            lines += ["", "## Across seeds", "", (tmp / "seeds_summary.md").read_text(encoding="utf-8")]
        from lm_forget.analysis.protocol_report import write_dynamics_section, write_protocol_section
        from lm_forget.run.graph import dynamics_inputs, protocol_cells

        if not config.forget.methods:
            lines += ["", *write_protocol_section(protocol_cells(plan), tmp / "protocol")]
        else:  # one protocol table per method (its rows would not say which method they are)
            from lm_forget.analysis.methods_report import write_methods_section
            from lm_forget.run.graph import method_protocol_cells

            cells = method_protocol_cells(plan)
            for spec in config.forget.method_specs:
                section = write_protocol_section([c for m, c in cells if m == spec.id], tmp / "protocol" / spec.id)
                lines += ["", f"{section[0]}: {spec.id}", *section[1:]] if section else []
        lines += write_dynamics_section(dynamics_inputs(plan), tmp / "protocol")
        if config.forget.methods:
            lines += write_methods_section(cells, tmp / "methods")
        if "eval_relearn" in config.stages:
            from lm_forget.analysis.relearn_report import write_relearn_section

            lines += ["", *write_relearn_section(relearn_cells(plan), tmp / "relearn", level=options.confidence_level,
                                                 n_bootstrap=options.n_bootstrap,
                                                 min_denominator=options.min_denominator)]
        (tmp / "index.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = next(iter(reports.values())).name
    return {"report": str(step.output / first / "index.md"), "index": str(step.output / "index.md"),
            "reports": {p.name: str(step.output / p.name) for p in reports.values()}}


def relearn_cells(plan: Any) -> list[Any]:
    """Per forget cell and k, the held-out lm-eval folders of the fine-tuned, forgotten and relearned models."""
    from lm_forget.analysis.relearn_report import RelearnCell
    from lm_forget.run.graph import cell_id, relearn_name

    by_name, config = plan.by_name, plan.config
    cells = []
    for task in config.tasks.forget:
        for n in config.forget_sizes:
            for seed in config.seeds:
                cid = cell_id(task, n, seed)
                for k in config.relearn.num_examples:
                    cell = RelearnCell(task=task, n=n, seed=seed, k=k, pool=config.relearn.pool)
                    names = {"finetuned": "eval_finetuned" if "eval_finetuned" in by_name else "eval_pretrained",
                             "forget": f"eval_forget/{cid}", "relearn": f"eval_{relearn_name(cid, k)}"}
                    for phase, name in names.items():
                        step = by_name.get(name)
                        if step is not None and step.is_done():
                            cell.held_out[phase] = step.output
                    cells.append(cell)
    return cells


def run_push(step: Step, ctx: Any) -> dict[str, Any]:
    """Push one cell's forget adapter (with its model card and eval results) to the Hub."""
    from lm_forget.hub.push import push_folder
    from lm_forget.run.evaluate import find_results_file

    config, plan = ctx.config, ctx.plan
    from lm_forget.run.graph import cell_parts

    method, task, n, seed = cell_parts(step.cell)
    repo = f"{config.push.repo_prefix}-{method + '-' if method else ''}{task.removeprefix('forget_')}-{n}-{seed}"
    folder = plan.step(step.deps[0]).output
    # the card's accuracy table: pretrained / fine-tuned / after forget, from this study's lm-eval results
    columns = {"pretrained": "eval_pretrained", "fine-tuned": "eval_finetuned", "self": f"eval_forget/{step.cell}"}
    results = {col: find_results_file(plan.step(name).output) for col, name in columns.items()
               if name in plan.by_name and plan.step(name).is_done()}
    push = config.push
    url = push_folder(folder, repo, private=push.private, revision=push.revision,
                      eval_results=results or None, commit_message=f"lm-forget: forget {task} ({n}, {seed})",
                      base_model_id=push.base_model_id, suite_dataset=push.suite_dataset, timeout=push.timeout)
    out = {"repo": repo, "url": url}
    if push.collection:
        from lm_forget.hub.collection import add_to_collection

        out["collection"] = add_to_collection(
            push.collection, repo, f"{config.name}: forgot {task} ({n}, {seed}); cell {step.cell}",
            private=push.private, description=f"lm-forget study {config.name}", timeout=push.timeout)
    return out
