"""Atomic writes: a result is either complete on disk or absent, never half-written and taken as done.

Every file goes to a temporary name beside its target and is moved into place with ``os.replace``
(atomic on POSIX and Windows within one filesystem). A step's ``done.json`` marker is written last.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON (indented, sorted keys) atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh temp folder beside ``target``; on success it replaces ``target`` in one rename.

    On failure (or a kill) the temp folder is left behind under a ``.tmp-`` name that nothing reads, and
    is cleared by the next attempt.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".tmp-{target.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    yield tmp
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
