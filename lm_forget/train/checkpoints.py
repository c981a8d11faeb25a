"""Which Trainer checkpoints can be resumed from: complete ones only (a kill or a full disk cuts saves short).

The Trainer writes a checkpoint's weights, then optimizer/scheduler/RNG state, then ``trainer_state.json``;
none of it atomically. A checkpoint counts as complete when ``trainer_state.json`` parses, its weights are
present with a safetensors header that matches the file size, and every ``*.pt``/``*.pth`` file is a whole
torch zip archive (its central directory, at the very end, is readable). Nothing is loaded into memory.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

from lm_forget.formats import ADAPTER_WEIGHTS_FILE, MODEL_WEIGHTS_FILE, MODEL_WEIGHTS_INDEX_FILE, TRAINER_STATE_FILE

logger = logging.getLogger(__name__)

WEIGHT_FILES = (ADAPTER_WEIGHTS_FILE, MODEL_WEIGHTS_FILE, MODEL_WEIGHTS_INDEX_FILE,
                "pytorch_model.bin", "adapter_model.bin")
#: accelerate/DeepSpeed/FSDP keep their own layouts; their presence counts as weights
SHARDED_LAYOUTS = ("global_step*", "pytorch_model_fsdp_*", "model_fsdp_*")


def _safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole safetensors file (None when it is)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
    except (OSError, ValueError, struct.error) as exc:
        return f"{path.name} is unreadable ({exc.__class__.__name__})"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    if size != 8 + n + max(ends, default=0):
        return f"{path.name} is truncated ({size} bytes, its header needs {8 + n + max(ends, default=0)})"
    return None


def _torch_file_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        return f"{path.name} is truncated or corrupt ({exc})"
    return None


def incomplete_reason(checkpoint: Path) -> str | None:
    """Why ``checkpoint`` cannot be resumed from, or None when it is complete."""
    try:
        json.loads((checkpoint / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"no readable {TRAINER_STATE_FILE} (the save was cut short)"
    return weights_problem(checkpoint)


def weights_problem(checkpoint: Path) -> str | None:
    """Why the weights in ``checkpoint`` (a checkpoint or a finished output folder) are not whole, or None."""
    weights = [checkpoint / name for name in WEIGHT_FILES if (checkpoint / name).is_file()]
    weights += [p for pattern in SHARDED_LAYOUTS for p in checkpoint.glob(pattern)]
    if not weights:
        return "no model or adapter weights"
    index = checkpoint / MODEL_WEIGHTS_INDEX_FILE
    shards: set[str] = set()
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError):
            return f"{index.name} is unreadable"
    for name in shards:
        if not (checkpoint / name).is_file():
            return f"weight shard {name} is missing"
    for path in sorted(checkpoint.glob("*.safetensors")):
        if problem := _safetensors_problem(path):
            return problem
    for path in sorted([*checkpoint.glob("*.pt"), *checkpoint.glob("*.pth"), *checkpoint.glob("*.bin")]):
        if problem := _torch_file_problem(path):
            return problem
    return None


#: A checkpoint folder's name, as transformers' ``trainer_utils.get_last_checkpoint`` matches it.
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_folders(folder: Path) -> list[Path]:
    """The ``checkpoint-N`` folders in ``folder``, oldest (smallest N) first; [] when ``folder`` is absent."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _CHECKPOINT_RE.match(p.name) and p.is_dir()]
    return sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[-1]))


def last_complete_checkpoint(folder: Path, get_last_checkpoint: Callable[[str], str | None] | None = None,
                             ) -> str | None:
    """The newest complete checkpoint in ``folder``, found by transformers' ``get_last_checkpoint``.

    Newer checkpoints that a kill or a full disk left incomplete are deleted with a warning (the Trainer
    would write over them anyway); older complete ones are kept. ``get_last_checkpoint`` defaults to
    transformers' own (tests pass another).
    """
    if get_last_checkpoint is None:
        from transformers.trainer_utils import get_last_checkpoint
    while folder.is_dir() and (last := get_last_checkpoint(str(folder))):
        reason = incomplete_reason(Path(last))
        if reason is None:
            return last
        logger.warning("removing incomplete checkpoint %s: %s; resuming from the one before", last, reason)
        shutil.rmtree(last)
    return None


def newest_complete(folder: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` in ``folder``, deleting nothing (for plans and messages)."""
    complete = [p for p in checkpoint_folders(folder) if incomplete_reason(p) is None]
    return complete[-1] if complete else None
