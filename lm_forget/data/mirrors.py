"""Where source datasets come from: a local mirror (``LM_FORGET_DATA_DIR``) or the Hugging Face Hub.

Mirror layout, the one of ``datasets`` repos on the Hub::

    <root>/<dataset_path>/<dataset_name or "default">/<split>.jsonl   (or .parquet)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_forget.errors import DataError

log = logging.getLogger(__name__)

DATA_DIR_ENV = "LM_FORGET_DATA_DIR"
MIRROR_SUFFIXES = (".jsonl", ".parquet")


def mirror_root() -> Path | None:
    """The mirror root from ``LM_FORGET_DATA_DIR``, or None when sources come from the Hub."""
    raw = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(raw).expanduser().resolve() if raw else None


@dataclass(frozen=True)
class SourceRef:
    """One split of one source dataset."""

    dataset_path: str
    dataset_name: str | None
    split: str

    def mirror_dir(self, root: Path) -> Path:
        return root / self.dataset_path / (self.dataset_name or "default")

    def describe(self) -> str:
        name = f", name={self.dataset_name!r}" if self.dataset_name else ""
        return f"{self.dataset_path}{name}, split={self.split!r}"


def mirror_file(ref: SourceRef, root: Path) -> Path:
    """The mirror file for ``ref``; a DataError naming the expected path when there is none."""
    base = ref.mirror_dir(root)
    for suffix in MIRROR_SUFFIXES:
        candidate = base / f"{ref.split}{suffix}"
        if candidate.is_file():
            return candidate
    present = sorted(p.name for p in base.glob("*")) if base.is_dir() else []
    found = f" (that folder has: {', '.join(present)})" if present else ""
    raise DataError(
        f"local mirror is missing split {ref.split!r} of {ref.describe()}: expected {base / (ref.split + '.jsonl')}"
        f" or .parquet{found}. Add the file in the Hugging Face schema, or unset {DATA_DIR_ENV} to load from the Hub."
    )


def fingerprint(ref: SourceRef) -> str:
    """What identifies the source data for cache keys: mirror file size+mtime, or the Hub address."""
    root = mirror_root()
    if root is None:
        return f"hub:{ref.dataset_path}/{ref.dataset_name or ''}/{ref.split}"
    path = mirror_file(ref, root)
    stat = path.stat()
    return f"mirror:{path}:{stat.st_size}:{stat.st_mtime_ns}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a malformed row is a DataError naming the file and line."""
    rows: list[dict[str, Any]] = []
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{number}: malformed JSON row ({exc.msg} at column {exc.colno}). "
                    "Each line must be one JSON object in the dataset's Hugging Face schema."
                ) from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}.")
            rows.append(row)
    return rows


def load_split(ref: SourceRef, dataset_kwargs: dict[str, Any] | None = None):
    """Load one source split as a ``datasets.Dataset`` (mirror if configured, else the Hub)."""
    import datasets

    root = mirror_root()
    if root is not None:
        path = mirror_file(ref, root)
        log.debug("loading %s from mirror %s", ref.describe(), path)
        if path.suffix == ".parquet":
            return datasets.Dataset.from_parquet(str(path))
        rows = read_jsonl(path)
        if not rows:
            raise DataError(f"{path}: the mirror file is empty; it must hold the rows of {ref.describe()}.")
        try:
            return datasets.Dataset.from_list(rows)
        except Exception as exc:  # arrow type conflicts between rows
            raise DataError(f"{path}: rows do not share one schema ({exc}). Check the file's field types.") from None
    return _load_from_hub(ref, dataset_kwargs or {})


def _load_from_hub(ref: SourceRef, dataset_kwargs: dict[str, Any]):
    import datasets

    kwargs = {k: v for k, v in dataset_kwargs.items() if k != "trust_remote_code"}
    try:
        return datasets.load_dataset(ref.dataset_path, ref.dataset_name, split=ref.split, **kwargs)
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("HF_DATASETS_OFFLINE", "")
        why = "offline mode is on and the dataset is not in the local cache" if offline else str(exc).splitlines()[0]
        raise DataError(
            f"could not load {ref.describe()} from the Hugging Face Hub: {why}. To get the data: run once with "
            f"network access (the Hugging Face cache keeps it), or point {DATA_DIR_ENV} at a local mirror laid out as "
            f"<root>/{ref.dataset_path}/{ref.dataset_name or 'default'}/{ref.split}.jsonl."
        ) from None
