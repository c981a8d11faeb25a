"""The step-key schema: which form of step keys a study on disk was written with.

A step's folder is named by its key (``run/keys.py``). If what a key hashes, or how, ever changes, the same config
maps to new folders, and a study resumed by the new code would silently re-run every step beside the old ones.
So the form has one version, ``KEY_SCHEMA_VERSION``, recorded in every step's ``settings.json`` and ``done.json``
(never in the hashed settings: recording it changes no key), and the runner refuses a run dir holding steps of
another version instead of re-keying them. Change what keys hash, and bump it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lm_forget.errors import ConfigError
from lm_forget.formats import DONE_FILE, STEP_SETTINGS_FILE

KEY_SCHEMA_VERSION = 2  # 2: forget steps hash their method (forget.method), not label_mode
KEY_SCHEMA_FIELD = "key_schema"
#: a step record without the field was written before the version was recorded, in the form that is version 1
UNRECORDED_VERSION = 1


def key_schema_of(record: dict[str, Any]) -> Any:
    """The key schema version a step record (``settings.json`` / ``done.json``) was written with."""
    return record.get(KEY_SCHEMA_FIELD, UNRECORDED_VERSION)


def _records(folders: Iterable[Path]) -> Iterable[tuple[Path, dict[str, Any]]]:
    for folder in folders:
        if not folder.is_dir():
            continue
        for name in (DONE_FILE, STEP_SETTINGS_FILE):
            for path in sorted(folder.glob(f"*/{name}")):
                try:
                    record = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, ValueError):
                    continue  # a damaged record is reported by the step that reads it (Step.done_record)
                if isinstance(record, dict):
                    yield path, record


def refuse_other_key_schema(run_dir: Path, folders: Iterable[Path]) -> None:
    """ConfigError if a step record in ``folders`` (the stage folders of ``run_dir``) has another key schema."""
    for path, record in _records(folders):
        version = key_schema_of(record)
        if version != KEY_SCHEMA_VERSION:
            raise ConfigError(
                f"run_dir {run_dir}: step folder {path.parent} was written with step-key schema {version!r}, and this "
                f"lm-forget writes schema {KEY_SCHEMA_VERSION}; its keys would not match, so every step would run "
                "again beside the old ones. Resume that study with the lm-forget version that wrote it, or run "
                "this one in a new run_dir (--run-dir DIR)."
            )
