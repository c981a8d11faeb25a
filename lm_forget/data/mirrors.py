"""Where source datasets come from: a local mirror (``LM_FORGET_DATA_DIR``) or the Hugging Face Hub.

Mirror layout, the one of ``datasets`` repos on the Hub::

    <root>/<dataset_path>/<dataset_name or "default">/<split>.jsonl   (or .parquet)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_forget.errors import DataError
from lm_forget.io import JsonlError, iter_jsonl

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
        if candidate.exists():
            kind = "folder" if candidate.is_dir() else "special file"
            raise DataError(f"local mirror split {candidate} is a {kind}, not a file; replace it with the split's "
                            "JSON Lines (or parquet) file.")
    present = sorted(p.name for p in base.glob("*")) if base.is_dir() else []
    found = f" (that folder has: {', '.join(present)})" if present else ""
    raise DataError(
        f"local mirror is missing split {ref.split!r} of {ref.describe()}: expected {base / (ref.split + '.jsonl')}"
        f" or .parquet{found}. Add the file in the Hugging Face schema, or unset {DATA_DIR_ENV} to load from the Hub."
    )


_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}


def content_digest(path: Path) -> str:
    """SHA-256 of a mirror file's bytes (memoised in-process while its inode, size, mtime and ctime stay)."""
    import hashlib

    stat = path.stat()
    memo = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if memo not in _DIGESTS:
        with open(path, "rb") as handle:
            _DIGESTS[memo] = hashlib.file_digest(handle, "sha256").hexdigest()
    return _DIGESTS[memo]


def fingerprint(ref: SourceRef) -> str:
    """What identifies the source data for cache keys: the mirror file's content hash, or the Hub address.

    Content, not size + mtime: ``cp -p``, ``rsync -a`` and tar restores keep both while changing the rows.
    """
    root = mirror_root()
    if root is None:
        return f"hub:{ref.dataset_path}/{ref.dataset_name or ''}/{ref.split}"
    path = mirror_file(ref, root)
    return f"mirror:{path}:sha256:{content_digest(path)}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a malformed row is a DataError naming the file and line."""
    return [row for _, row in read_jsonl_lines(path)]


def read_jsonl_lines(path: Path, suspects: set[int] | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) for each non-blank line of a JSONL file; a malformed row is a DataError.

    ``suspects`` collects the lines that may hold a lone surrogate (for :func:`rows.check_rows`).
    """
    from lm_forget.data.rows import may_hold_surrogate

    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        for number, line, row in iter_jsonl(path):
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}. "
                                "Each line must be one JSON object in the dataset's Hugging Face schema.")
            rows.append((number, row))
            if suspects is not None and may_hold_surrogate(line):
                suspects.add(number)
    except JsonlError as exc:
        if exc.byte is not None:
            raise DataError(f"{path}:{exc.line}: the file is not valid UTF-8 ({exc.reason} at byte {exc.byte}). "
                            "Save the mirror as UTF-8 JSON Lines.") from None
        raise DataError(
            f"{path}:{exc.line}: malformed JSON row ({exc.reason} at column {exc.column}). "
            "Each line must be one JSON object in the dataset's Hugging Face schema."
        ) from None
    return rows


def load_split(ref: SourceRef, dataset_kwargs: dict[str, Any] | None = None):
    """Load one source split as a ``datasets.Dataset`` (mirror if configured, else the Hub), rows checked."""
    import datasets

    from lm_forget.data.rows import check_null_text, check_rows

    root = mirror_root()
    if root is None:
        dataset = _load_from_hub(ref, dataset_kwargs or {})
        check_null_text(dataset, ref.describe())
        return dataset
    path = mirror_file(ref, root)
    log.debug("loading %s from mirror %s", ref.describe(), path)
    if path.suffix == ".parquet":
        try:
            dataset = datasets.Dataset.from_parquet(str(path))
        except Exception as exc:
            raise DataError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc}). "
                            "Rewrite it, or use a .jsonl mirror.") from None
        check_null_text(dataset, str(path))
        return dataset
    suspects: set[int] = set()
    numbered = read_jsonl_lines(path, suspects)
    if not numbered:
        raise DataError(f"{path}: the mirror file is empty; it must hold the rows of {ref.describe()}.")
    lines, rows = [n for n, _ in numbered], [r for _, r in numbered]
    check_rows(path, rows, lines, suspects=suspects)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    try:  # by column, so a field the first row lacks is not lost for the others
        return datasets.Dataset.from_dict({key: [row.get(key) for row in rows] for key in columns})
    except Exception as exc:  # arrow type conflicts the row check does not see (e.g. int overflow)
        raise DataError(f"{path}: rows do not share one schema ({exc}). Check the file's field types.") from None


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
