"""On-disk cache of built docs: ``<cache_root>/tasks/<task>/<key>/{train,test}.jsonl + report.json``.

Entries are written to a temporary folder and renamed into place, under a file lock, so concurrent
builders (several GPUs, several jobs) never see a half-written entry. Each entry records every split's row
count and SHA-256 (``manifest.json``); a load checks both, so a damaged entry (a truncated file, an edited
row) is rebuilt with a warning instead of silently serving fewer or different docs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from lm_forget.data.docs import SPLITS
from lm_forget.data.hashing import canonical_json
from lm_forget.io import atomic_dir, atomic_write_json, parse_jsonl, write_jsonl
from lm_forget.paths import cache_root

log = logging.getLogger(__name__)

REPORT_FILE = "report.json"
MANIFEST_FILE = "manifest.json"  #: {split: {"rows": n, "sha256": hex}} of the entry's files


def entry_dir(task: str, key: str) -> Path:
    return cache_root() / "tasks" / task / key


def write_docs(path: Path, docs: list[dict[str, Any]]) -> None:
    """Canonical JSONL: the same docs always give the same bytes."""
    write_jsonl(path, docs, dumps=canonical_json)


def _file_record(data: bytes) -> dict[str, Any]:
    return {"rows": sum(1 for line in data.splitlines() if line.strip()), "sha256": hashlib.sha256(data).hexdigest()}


def _verified_docs(folder: Path, split: str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The docs of one split, after checking its row count and checksum against the manifest."""
    path = folder / f"{split}.jsonl"
    data = path.read_bytes()
    want, got = manifest.get(split) or {}, _file_record(data)
    if got["rows"] != want.get("rows"):
        raise ValueError(f"{path.name} has {got['rows']} rows, the entry recorded {want.get('rows')}")
    if got["sha256"] != want.get("sha256"):
        raise ValueError(f"{path.name} does not match its recorded SHA-256 (edited or corrupted)")
    return parse_jsonl(data, path)


def read_entry(task: str, key: str) -> tuple[dict[str, list[dict]], dict] | None:
    """The cached splits and report, or None when absent, incomplete or damaged (then it is rebuilt)."""
    folder = entry_dir(task, key)
    report_path = folder / REPORT_FILE
    if not report_path.is_file():
        return None
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        splits = {split: _verified_docs(folder, split, manifest) for split in SPLITS}
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        log.warning("cached docs of %s in %s are damaged (%s); rebuilding them", task, folder, exc)
        return None
    return splits, report


def write_entry(task: str, key: str, splits: dict[str, list[dict]], report: dict) -> Path:
    """Atomically publish a cache entry (report written last, folder renamed into place)."""
    final = entry_dir(task, key)
    with atomic_dir(final, keep_on_error=False) as tmp:
        manifest = {}
        for split in SPLITS:
            write_docs(tmp / f"{split}.jsonl", splits[split])
            manifest[split] = _file_record((tmp / f"{split}.jsonl").read_bytes())
        atomic_write_json(tmp / MANIFEST_FILE, manifest)
        atomic_write_json(tmp / REPORT_FILE, report)
    return final


def lock_for(task: str, key: str):
    """A cross-process lock for building one cache entry."""
    from filelock import FileLock

    path = entry_dir(task, key).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path))
