"""Names and layouts of the files lm-forget writes and reads, and the one reader of lm-eval output folders.

A module that writes or opens one of these files names it through a constant here, so a name is typed
once. Like :mod:`lm_forget.io` this module sits at the bottom of the package (it imports only
``lm_forget.errors``) and imports nothing heavy.

lm-eval output folder (``lm_eval --output_path DIR --log_samples``)::

    DIR/<model>/results_<ts>.json            one per run: scores, configs, model args
    DIR/<model>/samples_<task>_<ts>.jsonl    one per task of that run: per-doc records

A results file and its samples files share the timestamp ``<ts>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lm_forget.errors import DataError

# ---------------------------------------------------------------- a training run's output folder
RUN_STATE_FILE = "forget_config.json"  #: lm-forget's record of a run (status, settings, versions)
LABELS_FILE = "labels.jsonl"  #: the (re)labelled forget set a run trained on
CHECKPOINTS_DIR = "checkpoints"  #: the trainer's checkpoint subfolder of a run folder
CARD_FILE = "README.md"  #: the model card
EVAL_RESULTS_FILE = "eval_results.json"  #: scores rendered into the card at push time
TRAINING_ARGS_FILE = "training_args.bin"  #: Trainer.save_model's pickle of its arguments (never pushed)

# ---------------------------------------------------------------- Hugging Face model / adapter files
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
MODEL_CONFIG_FILE = "config.json"
MODEL_WEIGHTS_FILE = "model.safetensors"
MODEL_WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
TRAINER_STATE_FILE = "trainer_state.json"  #: written last into a trainer checkpoint

# ---------------------------------------------------------------- a study's run folder
STUDY_CONFIG_FILE = "config.yaml"  #: the study config as resolved, at the root of the run folder
PLAN_FILE = "plan.json"  #: the planned steps and their status, at the root of the run folder
STEP_SETTINGS_FILE = "settings.json"  #: what a step's key hashes, in the step's folder
DONE_FILE = "done.json"  #: a step's completion record, written last
REPORT_INDEX_FILE = "index.md"  #: the front page of an analysis report folder

# ---------------------------------------------------------------- lm-eval output folders
RESULTS_GLOB = "results_*.json"


def results_files(folder: Path) -> list[Path]:
    """Every lm-eval ``results_<ts>.json`` under ``folder`` (any depth), sorted by path."""
    return sorted(Path(folder).rglob(RESULTS_GLOB))


def results_timestamp(results_file: Path) -> str:
    """The ``<ts>`` of ``results_<ts>.json``: it names the run's samples files too."""
    return results_file.stem[len("results_"):]


def samples_file(results_file: Path, task: str) -> Path:
    """Where lm-eval put ``task``'s samples of the run that wrote ``results_file`` (may be missing)."""
    return results_file.parent / f"samples_{task}_{results_timestamp(results_file)}.jsonl"


def samples_files(folder: Path, task: str) -> list[Path]:
    """Every ``samples_<task>_*.jsonl`` under ``folder`` (any depth), sorted by path."""
    return sorted(Path(folder).rglob(f"samples_{task}_*.jsonl"))


def find_results_file(out_dir: Path) -> Path:
    """The ``results_*.json`` of an eval step's output (one per step; the latest when several)."""
    found = results_files(out_dir)
    if not found:
        raise DataError(f"no lm-eval results_*.json under {out_dir}; rerun the step (delete its folder).")
    return found[-1]


def read_results(results_file: Path) -> dict[str, Any]:
    """The JSON of one lm-eval results file; a DataError naming it when it cannot be read."""
    try:
        return json.loads(results_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{results_file}: not a readable lm-eval results JSON ({exc})") from None


def lm_eval_run(folder: Path) -> tuple[Path, dict[str, Any]]:
    """(results file, its JSON) of one eval step's output folder."""
    path = find_results_file(folder)
    return path, read_results(path)
