"""What a push may upload: an allow-list of exact file names at the top of a run folder.

Anything not named here stays local, whatever its name, case or extension (checkpoints, pickles such as
``training_args.bin``, editor backups, a stray ``.env``). Symlinks are never followed.
"""

from __future__ import annotations

import re
from pathlib import Path

from lm_forget.formats import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_WEIGHTS_FILE,
    CARD_FILE,
    EVAL_RESULTS_FILE,
    LABELS_FILE,
    MODEL_CONFIG_FILE,
    MODEL_WEIGHTS_FILE,
    MODEL_WEIGHTS_INDEX_FILE,
    RUN_STATE_FILE,
)

#: Exact top-level names a run folder may publish (case-sensitive).
ALLOWED_FILES = frozenset({
    # PEFT adapter
    ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE,
    # full fine-tuning (--no-lora): safetensors weights and their configs only
    MODEL_WEIGHTS_FILE, MODEL_WEIGHTS_INDEX_FILE, MODEL_CONFIG_FILE, "generation_config.json",
    # tokenizer files written by save_pretrained (JSON / text / sentencepiece protobuf, no pickles)
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json",
    # the card and lm-forget's own records
    CARD_FILE, RUN_STATE_FILE, LABELS_FILE, EVAL_RESULTS_FILE,
})
#: Sharded full-model weights: model-00001-of-00003.safetensors
SHARD_RE = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")
#: Rendered at push time from the run's records; never read from the folder.
GENERATED_FILES = (CARD_FILE, EVAL_RESULTS_FILE)


def is_allowed(name: str) -> bool:
    """True for a top-level file name the Hub may receive."""
    return name in ALLOWED_FILES or SHARD_RE.fullmatch(name) is not None


def files_to_upload(folder: Path) -> tuple[list[Path], list[str]]:
    """``(uploaded, skipped)``: allowed regular files of ``folder`` (no symlinks, no subfolders) and the rest."""
    uploaded: list[Path] = []
    skipped: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.name in GENERATED_FILES:
            continue
        if is_allowed(path.name) and path.is_file() and not path.is_symlink():
            uploaded.append(path)
        else:
            skipped.append(path.name + ("/" if path.is_dir() else ""))
    return uploaded, skipped
