"""On-disk cache of built docs: ``<cache_root>/tasks/<task>/<key>/{train,test}.jsonl + report.json``.

Entries are written to a temporary folder and renamed into place, under a file lock, so concurrent
builders (several GPUs, several jobs) never see a half-written entry.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lm_forget.data.docs import SPLITS
from lm_forget.data.hashing import canonical_json
from lm_forget.paths import cache_root

REPORT_FILE = "report.json"


def entry_dir(task: str, key: str) -> Path:
    return cache_root() / "tasks" / task / key


def write_docs(path: Path, docs: list[dict[str, Any]]) -> None:
    """Canonical JSONL: the same docs always give the same bytes."""
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for doc in docs:
            handle.write(canonical_json(doc))
            handle.write("\n")


def read_docs(path: Path) -> list[dict[str, Any]]:
    with path.open("r", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_entry(task: str, key: str) -> tuple[dict[str, list[dict]], dict] | None:
    """The cached splits and report, or None when absent or incomplete."""
    folder = entry_dir(task, key)
    report_path = folder / REPORT_FILE
    if not report_path.is_file():
        return None
    try:
        splits = {split: read_docs(folder / f"{split}.jsonl") for split in SPLITS}
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return splits, report


def write_entry(task: str, key: str, splits: dict[str, list[dict]], report: dict) -> Path:
    """Atomically publish a cache entry (report written last, folder renamed into place)."""
    final = entry_dir(task, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
    try:
        for split in SPLITS:
            write_docs(tmp / f"{split}.jsonl", splits[split])
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def lock_for(task: str, key: str):
    """A cross-process lock for building one cache entry."""
    from filelock import FileLock

    path = entry_dir(task, key).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path))
