"""Atomic writes: a result is either complete on disk or absent, never half-written and taken as done.

Every file goes to a temporary name beside its target and is moved into place with ``os.replace``
(atomic on POSIX and Windows within one filesystem). A step's ``done.json`` marker is written last.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


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
def atomic_dir(target: Path, *, keep_on_error: bool = True) -> Iterator[Path]:
    """Yield a fresh temp folder beside ``target``; on success it replaces ``target`` (see :func:`replace_dir`).

    On failure (or a kill) the temp folder is left behind under a ``.tmp-`` name that nothing reads, and
    is cleared by the next attempt (``keep_on_error=False``: deleted at once on an exception).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(target)
    for stale in target.parent.glob(f".tmp-{target.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
    except BaseException:
        if not keep_on_error:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, target)


def _aside(target: Path) -> Path:
    return target.parent / f".old-{target.name}"


def replace_dir(src: Path, target: Path) -> None:
    """Move folder ``src`` to ``target`` by renames only: ``target`` is always the old folder or the new one.

    The old folder is renamed aside (``.old-<name>``) before the new one moves in and deleted after; a kill
    between those two renames leaves it there, and :func:`recover_dir` (run by the next attempt) puts it back.
    """
    aside = _aside(target)
    if target.exists():
        if aside.exists():
            shutil.rmtree(aside)
        os.replace(target, aside)
    os.replace(src, target)
    shutil.rmtree(aside, ignore_errors=True)


def recover_dir(target: Path) -> None:
    """Undo a :func:`replace_dir` a kill cut between its two renames (the old folder comes back)."""
    aside = _aside(target)
    if not aside.exists():
        return
    if target.exists():  # the new folder had landed: only the deletion of the old one was cut short
        shutil.rmtree(aside, ignore_errors=True)
        return
    os.replace(aside, target)
    log.warning("restored %s: an interrupted replacement had moved it aside", target)


def disk_full_error(exc: OSError, where: Path | str, fix: str) -> Exception | None:
    """A readable error for a full disk (or quota) while writing under ``where``; None for other OSErrors."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    from lm_forget.errors import LmForgetError

    target = exc.filename or where
    return LmForgetError(f"no space left on the device (disk full or quota exceeded) while writing {target}: {fix}")
