"""Prepared docs: a folder with ``train.jsonl`` and ``test.jsonl`` already in the doc schema.

Used for tasks generated outside the suite (the embedded demo) and anything a user binarized
themselves; every row is validated so a bad file fails with its path and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lm_forget.data.docs import SPLITS
from lm_forget.data.mirrors import read_jsonl
from lm_forget.errors import DataError

REQUIRED = ("id", "prompt", "choices", "label")


def validate_doc(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """Check one doc; fill the optional fields with their defaults."""
    missing = [f for f in REQUIRED if f not in doc]
    if missing:
        raise DataError(f"{where}: doc lacks field(s) {missing}; docs need {list(REQUIRED)}.")
    choices = doc["choices"]
    if not (isinstance(choices, list) and len(choices) == 2 and all(isinstance(c, str) for c in choices)):
        raise DataError(f"{where}: 'choices' must be a list of two strings, got {choices!r}.")
    if doc["label"] not in (0, 1):
        raise DataError(f"{where}: 'label' must be 0 or 1, got {doc['label']!r}.")
    filled = {"continuation": "", "target_delimiter": " ", "source_index": -1, "source_choices": list(choices),
              "source_label": doc["label"], "kept": [0, 1], **doc}
    return filled


def read_prepared(docs_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Both splits of a prepared docs folder, validated."""
    root = Path(docs_dir).expanduser()
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        path = root / f"{split}.jsonl"
        if not path.is_file():
            raise DataError(f"prepared docs folder {root} has no {split}.jsonl (expected {path}).")
        rows = read_jsonl(path)
        if not rows:
            raise DataError(f"{path}: no docs; a task needs at least one doc per split.")
        splits[split] = [validate_doc(row, f"{path}:{n}") for n, row in enumerate(rows, start=1)]
    return splits
