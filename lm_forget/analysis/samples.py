"""Read an lm-eval ``--output_path`` folder: ``results_<ts>.json`` plus ``samples_<task>_<ts>.jsonl``.

lm-eval 0.4.x writes ``<output_path>/<model_name_sanitized>/results_<ts>.json`` and, with
``--log_samples``, one ``samples_<task>_<ts>.jsonl`` per task. Each sample line carries the doc (ours:
the binarized doc with its ``id``), ``filtered_resps`` (per choice ``[loglikelihood, is_greedy]`` as
strings on disk) and the per-doc ``acc``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_forget.errors import DataError
from lm_forget.formats import read_results, results_files, results_timestamp, samples_file
from lm_forget.io import JsonlError, iter_jsonl

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("task", "split", "doc_id", "label", "n_choices", "loglik", "correct", "p_gold")


@dataclass
class PhaseSamples:
    """The per-doc records of one evaluated model (one phase: pretrained, finetuned or forget).

    Attributes:
        root: the folder the records were read from.
        model: the model string lm-eval recorded (``model_name``), for the report.
        rows: one dict per (task, split, doc) with the fields in ``SAMPLE_COLUMNS``.
        files: task -> the samples file its rows came from (for error messages).
        problems: what the report must warn about (non-finite loglikelihoods, a task scored twice), one line each.
    """

    root: Path
    model: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def tasks(self) -> list[str]:
        return sorted({r["task"] for r in self.rows})

    def frame(self):
        """The rows as a pandas DataFrame (one row per task, split, doc)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(SAMPLE_COLUMNS))


def _results_files(root: Path) -> list[Path]:
    if not root.exists():
        raise DataError(f"{root} does not exist: pass the --output_path folder of an `lm_eval --log_samples` run.")
    files = results_files(root)
    if not files:
        raise DataError(
            f"no lm-eval results_*.json under {root}: pass the --output_path folder of an "
            "`lm_eval ... --log_samples --output_path DIR` run."
        )
    parents = sorted({f.parent for f in files})
    if len(parents) > 1:
        names = ", ".join(str(p.relative_to(root)) for p in parents)
        raise DataError(
            f"{root} holds results of several models ({names}); pass the one subfolder of the model you mean."
        )
    return files


#: model_args keys that say which weights were scored (batch size, dtype, device do not change the model)
MODEL_IDENTITY_KEYS = ("pretrained", "peft", "lora_local_path", "delta", "revision", "subfolder")


def _model_args(results: dict[str, Any]) -> dict[str, str]:
    args = (results.get("config") or {}).get("model_args") or ""
    if isinstance(args, str):
        pairs = dict(part.split("=", 1) for part in args.split(",") if "=" in part)
    else:
        pairs = {str(k): str(v) for k, v in dict(args).items()}
    return {k: pairs[k].strip().rstrip("/") for k in MODEL_IDENTITY_KEYS if pairs.get(k) not in (None, "", "None")}


def model_identity(results: dict[str, Any]) -> str:
    """The weights a results JSON scored, from lm-eval's ``config.model_args`` (string or dict)."""
    return ",".join(f"{k}={v}" for k, v in _model_args(results).items()) or "(no model_args recorded)"


def check_one_model(loaded: dict[Path, dict[str, Any]], root: Path) -> None:
    """Each task in a phase folder is scored by one model, and adapters in it share one base.

    A later results file would otherwise silently replace another model's records of the same docs. Different
    models for *different* tasks stay allowed: a forget phase scores each task after forgetting that task (the
    study runner's layout), and with full fine-tuning each of those models is its own ``pretrained=`` folder.
    """
    def clash(what: str, a: Path, b: Path) -> DataError:
        return DataError(
            f"{root} holds lm-eval results of two different models{what}: {a.name} has model_args "
            f"{model_identity(loaded[a])!r} but {b.name} has {model_identity(loaded[b])!r}. A phase folder must hold "
            "one model's results per task: move the other model's results_*.json and samples_*.jsonl to a folder "
            "of its own."
        )

    first_of_base: dict[str, Path] = {}
    first_of_task: dict[str, Path] = {}
    for path, results in loaded.items():
        args = _model_args(results)
        base = args.get("pretrained", "")
        # adapters share one base; full-weight forget models (no adapter) each have their own weights, one per
        # task (the runner's layout with lora: false), which the per-task check below still covers
        if any(k in args for k in ("peft", "lora_local_path", "delta")):
            if first_of_base and base not in first_of_base:
                raise clash("", next(iter(first_of_base.values())), path)
            first_of_base.setdefault(base, path)
        for task in results.get("configs") or {}:
            other = first_of_task.setdefault(task, path)
            if model_identity(loaded[other]) != model_identity(results):
                raise clash(f" for task {task}", other, path)


def softmax_gold(loglik: list[float], label: int) -> float:
    """Probability of the gold choice under a softmax over the choices' summed loglikelihoods."""
    top = max(loglik)
    weights = [math.exp(x - top) for x in loglik]
    return weights[label] / sum(weights)


def _choice_logliks(sample: dict[str, Any], where: str) -> list[float]:
    resps = sample.get("filtered_resps", sample.get("resps"))
    if not isinstance(resps, list) or not resps:
        raise DataError(f"{where}: no filtered_resps/resps; is this a multiple-choice task's samples file?")
    out = []
    for r in resps:
        # filtered_resps: [ll, is_greedy]; resps: [[ll, is_greedy]]; values are strings on disk
        while isinstance(r, list | tuple):
            r = r[0]
        try:
            out.append(float(r))
        except (TypeError, ValueError):
            raise DataError(f"{where}: loglikelihood {r!r} is not a number") from None
    return out


def parse_sample(sample: dict[str, Any], task_name: str, where: str) -> dict[str, Any]:
    """One sample line -> a row of ``SAMPLE_COLUMNS`` (joined across phases on (task, split, doc_id))."""
    doc = sample.get("doc")
    if not isinstance(doc, dict):
        raise DataError(f"{where}: sample has no 'doc' object")
    loglik = _choice_logliks(sample, where)
    if "label" in doc:
        label = int(doc["label"])
    else:  # a plain lm-eval task: the target index
        try:
            label = int(sample.get("target"))
        except (TypeError, ValueError):
            raise DataError(f"{where}: doc has no 'label' and target {sample.get('target')!r} is no index") from None
    if not 0 <= label < len(loglik):
        raise DataError(f"{where}: label {label} out of range for {len(loglik)} choices")
    doc_id = sample_doc_id(sample, task_name)
    correct = sample.get("acc")
    correct = bool(correct) if correct is not None else max(range(len(loglik)), key=loglik.__getitem__) == label
    return {
        "task": str(doc.get("task", task_name)),
        "split": str(doc.get("split", "test")),
        "doc_id": doc_id,
        "label": label,
        "n_choices": len(loglik),
        "loglik": loglik,
        "correct": correct,
        "p_gold": softmax_gold(loglik, label),
    }


def sample_doc_id(sample: dict[str, Any], task_name: str) -> str:
    """A sample's doc id: our docs carry ``id``; plain lm-eval docs fall back to lm-eval's ``doc_id`` and task."""
    doc = sample.get("doc") if isinstance(sample.get("doc"), dict) else {}
    return str(doc.get("id", f"{task_name}/{sample.get('doc_id')}"))


def read_correct(path: Path, task_name: str) -> dict[str, int]:
    """doc id -> 1/0 (lm-eval's per-doc ``acc``) of one samples file: what the forget-set, relearning and attack
    tables count; a DataError naming the file and line when a line is corrupt or has no ``acc``."""
    out: dict[str, int] = {}
    try:
        for lineno, _, sample in iter_jsonl(path):
            if "acc" not in sample:
                raise DataError(f"{path}:{lineno}: sample has no 'acc'; is this a multiple-choice task's samples "
                                "file (lm_eval --log_samples)?")
            out[sample_doc_id(sample, task_name)] = int(float(sample["acc"]) > 0.5)
    except JsonlError as exc:
        raise DataError(f"{path}:{exc.line}: corrupt samples line ({exc.reason}); rerun lm_eval with --log_samples"
                        ) from None
    return out


def read_metric_samples(path: Path) -> dict[str, dict[tuple[Any, str], dict[str, Any]]]:
    """filter -> (lm-eval ``doc_id``, ``doc_hash``) -> the sample's metric values, of one samples file of any
    lm-eval task (the utility table's per-doc input; lm-eval names the metrics in each sample's ``metrics``)."""
    by_filter: dict[str, dict[tuple[Any, str], dict[str, Any]]] = {}
    for _, _, sample in iter_jsonl(path):
        record = {m: sample[m] for m in sample.get("metrics", []) if m in sample}
        key = (sample.get("doc_id"), str(sample.get("doc_hash", "")))
        by_filter.setdefault(str(sample.get("filter", "none")), {})[key] = record
    return by_filter


def read_samples_file(path: Path, task_name: str) -> list[dict[str, Any]]:
    """All rows of one samples_<task>_<ts>.jsonl; a DataError naming the file and line when corrupt."""
    rows = []
    try:
        for lineno, _, sample in iter_jsonl(path):
            rows.append(parse_sample(sample, task_name, f"{path}:{lineno}"))
    except JsonlError as exc:
        raise DataError(
            f"{path}:{exc.line}: corrupt samples line ({exc.reason}); rerun lm_eval with --log_samples"
        ) from None
    if not rows:
        raise DataError(f"{path} holds no samples; rerun lm_eval with --log_samples")
    return rows


def read_phase(root: Path | str) -> PhaseSamples:
    """Every task's per-doc rows under one lm-eval output folder.

    Results files are read in timestamp order; a doc scored again by a later run (same task, split and
    doc id) replaces the earlier record, so re-runs and split-specific runs (``eval_on: train``) can share
    a folder.
    """
    root = Path(root)
    files = _results_files(root)
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    rescored: dict[tuple[str, str, Path, Path], int] = {}
    phase = PhaseSamples(root=root, model="")
    loaded: dict[Path, dict[str, Any]] = {}
    for results_file in sorted(files, key=results_timestamp):
        loaded[results_file] = read_results(results_file)
    check_one_model(loaded, root)
    for results_file, results in loaded.items():
        phase.model = str(results.get("model_name") or results.get("config", {}).get("model_args", "")) or phase.model
        for task, cfg in sorted((results.get("configs") or {}).items()):
            if (cfg or {}).get("output_type", "multiple_choice") != "multiple_choice":
                log.info("skipping %s in %s: not multiple_choice", task, results_file)
                continue
            samples = samples_file(results_file, task)
            if not samples.is_file():
                raise DataError(
                    f"{results_file} lists task {task!r} but {samples.name} is missing beside it: "
                    "rerun lm_eval with --log_samples."
                )
            seen: set[tuple[str, str, str]] = set()
            for row in read_samples_file(samples, task):
                key = (row["task"], row["split"], row["doc_id"])
                if key in seen:
                    raise DataError(f"{samples}: doc {row['doc_id']} appears twice in one samples file")
                seen.add(key)
                if key in by_key and by_key[key]["file"] != samples:
                    rescored.setdefault((row["task"], row["split"], by_key[key]["file"], samples), 0)
                    rescored[(row["task"], row["split"], by_key[key]["file"], samples)] += 1
                by_key[key] = {**row, "file": samples}
                phase.files[row["task"]] = samples
    phase.rows = [{k: v for k, v in row.items() if k != "file"} for row in by_key.values()]
    if not phase.rows:
        raise DataError(f"{root}: no multiple-choice task samples found in {', '.join(map(str, files))}")
    for (task, split, old, new), n in sorted(rescored.items(), key=str):
        phase.problems.append(f"{root}: {n} {split} docs of {task} were scored twice, in {old.name} and in "
                              f"{new.name}; the analysis uses {new.name} (the later time stamp in its name). If "
                              "that is the wrong run, move the other one's results and samples out of the folder.")
    phase.problems += nonfinite_problems(phase)
    for problem in phase.problems:
        log.warning(problem)
    return phase


def nonfinite_problems(phase: PhaseSamples) -> list[str]:
    """One line per task whose docs have NaN or infinite loglikelihoods (a diverged model scores NaN)."""
    bad: dict[str, int] = {}
    total: dict[str, int] = {}
    for row in phase.rows:
        total[row["task"]] = total.get(row["task"], 0) + 1
        if not all(math.isfinite(x) for x in row["loglik"]):
            bad[row["task"]] = bad.get(row["task"], 0) + 1
    return [f"{phase.root}: {n} of {total[task]} docs of {task} have NaN or infinite loglikelihoods (a diverged "
            "model?): their confidences are undefined (blank in the tables) and their correctness is lm-eval's "
            f"acc. Check that model before trusting the numbers of {task}." for task, n in sorted(bad.items())]


def phase_from_results(results: dict[str, Any], name: str = "in memory") -> PhaseSamples:
    """The per-doc records of the dict ``lm_eval.simple_evaluate(..., log_samples=True)`` returns.

    The in-memory twin of :func:`read_phase` (same rows, same checks): ``results["samples"]`` holds what lm-eval
    would have written to its ``samples_<task>_<ts>.jsonl`` files. ``name`` labels the phase in the report
    (its ``root``).
    """
    samples = results.get("samples") if isinstance(results, dict) else None
    if not isinstance(samples, dict):
        raise DataError(f"{name}: not an lm-eval results dict with per-doc samples: call "
                        "lm_eval.simple_evaluate(..., log_samples=True) (or lm_forget.evaluate), or pass a folder.")
    config = results.get("config") or {}
    phase = PhaseSamples(root=Path(f"<{name}>"),
                         model=str(results.get("model_name") or config.get("model_args") or config.get("model", "")))
    seen: set[tuple[str, str, str]] = set()
    for task, cfg in sorted((results.get("configs") or {}).items()):
        if (cfg or {}).get("output_type", "multiple_choice") != "multiple_choice":
            log.info("skipping %s in %s: not multiple_choice", task, name)
            continue
        if task not in samples:
            raise DataError(f"{name}: task {task!r} has no samples; evaluate with log_samples=True.")
        for i, sample in enumerate(samples[task]):
            row = parse_sample(sample, task, f"{name}: {task} sample {i}")
            key = (row["task"], row["split"], row["doc_id"])
            if key in seen:
                raise DataError(f"{name}: doc {row['doc_id']} of {row['task']} appears twice in the samples")
            seen.add(key)
            phase.rows.append(row)
    if not phase.rows:
        raise DataError(f"{name}: no multiple-choice task samples in the results")
    phase.problems += nonfinite_problems(phase)
    for problem in phase.problems:
        log.warning(problem)
    return phase
