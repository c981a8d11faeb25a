"""What a run leaves in its output folder: forget_config.json, labels.jsonl, README.md — and no pickles."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_forget.formats import (
    ADAPTER_CONFIG_FILE,
    CARD_FILE,
    CHECKPOINTS_DIR,
    LABELS_FILE,
    RUN_STATE_FILE,
    TRAINING_ARGS_FILE,
)
from lm_forget.io import atomic_write_json, write_jsonl

if TYPE_CHECKING:
    from lm_forget.train.api import TrainResult
    from lm_forget.train.config import ForgetConfig

logger = logging.getLogger(__name__)

#: Written by Trainer.save_model (a pickle of the arguments); never left where it could be pushed.
PICKLE_FILES = (TRAINING_ARGS_FILE,)
VERSIONED_PACKAGES = ("lm-forget", "torch", "transformers", "trl", "peft", "datasets", "accelerate",
                      "huggingface-hub", "lm-eval")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run depends on."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def source_datasets(tasks: Sequence[str]) -> list[str]:
    """Hub dataset ids behind suite tasks (for the card's ``datasets``); derived/unknown tasks are skipped."""
    found: list[str] = []
    for task in tasks:
        try:
            from lm_forget.data.registry import get_suite_spec
            from lm_forget.data.source import load_source_config

            spec = get_suite_spec(task)
            path = load_source_config(spec).get("dataset_path") if spec is not None else None
        except Exception as exc:  # card metadata must never fail a finished run
            logger.debug("no source dataset for %s: %s", task, exc)
            path = None
        if path and path not in found:
            found.append(str(path))
    return found


def read_run_state(output_dir: Path) -> dict[str, Any] | None:
    """forget_config.json of a run folder, or None when absent."""
    path = Path(output_dir) / RUN_STATE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _state(config: ForgetConfig, digest: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    per_task: dict[str, int] = {}
    for row in rows:
        per_task[row["task"]] = per_task.get(row["task"], 0) + 1
    return {
        "format": "lm-forget/forget_config/v1",
        "status": "training",
        "model": config.model,
        "base_model_id": config.base_model_id,
        "gguf_file": config.gguf_file,
        "tasks": list(config.tasks),
        "stage": config.stage,
        "method": config.forget_method.name if config.forget_method is not None else None,
        "seed": config.seed,
        "data": dict(config.data or {}),
        "num_examples": config.num_examples,
        "examples_per_task": per_task,
        "truncated_examples": sum(1 for row in rows if row.get("truncated_tokens")),  # prompt cut from the left
        "labels_hash": digest,
        "labels_file": LABELS_FILE,
        "datasets": source_datasets(config.tasks),
        "init_adapter": config.init_adapter,
        "use_lora": config.use_lora,
        "lora": {
            "r": config.lora_r,
            "alpha": config.lora_alpha,
            "dropout": config.lora_dropout,
            "target_modules": list(config.lora_target_modules),
        },
        "versions": package_versions(),
        "settings": config.settings(),
        **_gguf_state(config),
    }


def _gguf_state(config: ForgetConfig) -> dict[str, Any]:
    """``{"gguf": {...}}``: what the GGUF base's metadata says (file name, Hub id, quantization), for the card."""
    if not config.gguf_file:
        return {}
    from lm_forget.hub.gguf_source import gguf_path, read_gguf_source

    path = gguf_path(config.model, config.gguf_file)
    source = read_gguf_source(path) if path else None
    return {"gguf": source.to_dict() if source else {"file": config.gguf_file}}


def write_run_state(output_dir: Path, config: ForgetConfig, digest: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record the run's settings and label assignment before training (so --resume can check them)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_json(output_dir / RUN_STATE_FILE, _state(config, digest, rows))
    _write_labels(output_dir / LABELS_FILE, rows)


def finish_output_dir(output_dir: Path, config: ForgetConfig, result: TrainResult,
                      rows: Sequence[Mapping[str, Any]]) -> None:
    """Drop pickles, write the final forget_config.json and render the model card."""
    from lm_forget.hub.card import render_card

    for name in PICKLE_FILES:
        (output_dir / name).unlink(missing_ok=True)
    state = _state(config, result.labels_hash, rows)
    adapter_config = output_dir / ADAPTER_CONFIG_FILE
    if adapter_config.is_file():
        peft_cfg = json.loads(adapter_config.read_text(encoding="utf-8"))
        state["lora"] = {  # what was really trained (a continued adapter keeps its own r/alpha/targets)
            "r": peft_cfg.get("r"),
            "alpha": peft_cfg.get("lora_alpha"),
            "dropout": peft_cfg.get("lora_dropout"),
            "target_modules": sorted(peft_cfg.get("target_modules") or []),
        }
    # "done" is written last: a kill while the card is written leaves a run that --resume finishes
    state.update(status="saving", global_step=result.global_step, metrics=_jsonable(result.metrics))
    _write_json(output_dir / RUN_STATE_FILE, state)
    _write_labels(output_dir / LABELS_FILE, rows)
    render_card(output_dir).save(output_dir / CARD_FILE)
    _write_json(output_dir / RUN_STATE_FILE, {**state, "status": "done"})
    discard_previous(output_dir)
    logger.info("wrote %s", output_dir)


def previous_dir(output_dir: Path) -> Path:
    """Where ``--overwrite`` keeps the run it replaces until the new one is done."""
    return output_dir.parent / f".{output_dir.name}.previous"


def is_run_folder(output_dir: Path) -> bool:
    """True when ``output_dir`` holds an lm-forget run (finished or not)."""
    return (output_dir / RUN_STATE_FILE).is_file() or (output_dir / CHECKPOINTS_DIR).is_dir()


def set_aside_previous(output_dir: Path) -> Path | None:
    """``--overwrite``: move the run in ``output_dir`` aside (one rename) so old and new files never mix.

    A finished run stays in :func:`previous_dir` until the new run is done (then it is deleted); a kill in
    between leaves the old run there and ``output_dir`` marked unfinished. What an earlier interrupted
    overwrite left in ``output_dir`` is unfinished work and is dropped; the finished run it replaced is kept.
    """
    import shutil

    if not is_run_folder(output_dir):
        return None
    previous = previous_dir(output_dir)
    state = read_run_state(output_dir) or {}
    if previous.exists() and state.get("status") != "done":
        logger.warning("--overwrite: dropping the unfinished run in %s (the run it replaced stays in %s)",
                       output_dir, previous)
        shutil.rmtree(output_dir)
        return previous
    if previous.exists():
        shutil.rmtree(previous)
    output_dir.rename(previous)
    logger.info("--overwrite: moved the previous run to %s; it is deleted when this run is done", previous)
    return previous


def discard_previous(output_dir: Path) -> None:
    """Delete the run ``--overwrite`` set aside (called once the new run is done)."""
    import shutil

    previous = previous_dir(output_dir)
    if previous.exists():
        shutil.rmtree(previous, ignore_errors=True)


def is_done(output_dir: Path) -> bool:
    """True when ``output_dir`` holds a finished run (its forget_config.json says ``done``)."""
    try:
        return (read_run_state(output_dir) or {}).get("status") == "done"
    except (OSError, ValueError):
        return False


def _write_labels(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    write_jsonl(path, ({k: row[k] for k in ("id", "task", "gold", "label")} for row in rows))


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    # atomic: an interrupted write never leaves half a config
    atomic_write_json(path, data, sort_keys=False, ensure_ascii=False)


def _jsonable(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in metrics.items()}
