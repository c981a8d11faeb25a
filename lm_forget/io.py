"""Durable file I/O: atomic file and folder writes, and JSON Lines reading and writing.

A result is either complete on disk or absent, never half-written and taken as done. Every file goes to a
temporary name beside its target and is moved into place with ``os.replace`` (atomic on POSIX and Windows
within one filesystem); a folder is built in a temporary sibling and renamed into place. A step's
``done.json`` marker is written last. This module sits at the bottom of the package: it imports nothing
of lm_forget but ``lm_forget.errors``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; once the block has written it, it is synced and moved onto ``path``.

    On an exception the temp file is deleted and ``path`` is left as it was. For writers that want a path
    rather than a string (``DataFrame.to_parquet``, ``save_pretrained`` of one file).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and ``os.replace``."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` through a temp file and ``os.replace``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any, *, sort_keys: bool = True, ensure_ascii: bool = True) -> None:
    """Write JSON (indented by 2, a final newline; sorted keys unless told otherwise) atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=ensure_ascii,
                                       default=str) + "\n")


def _plain_json(row: Any) -> str:
    return json.dumps(row, ensure_ascii=False)


def write_jsonl(path: Path, rows: Iterable[Any], *, dumps: Callable[[Any], str] = _plain_json) -> None:
    """Write one JSON value per line (``dumps`` renders each; a final newline) atomically."""
    atomic_write_text(path, "".join(dumps(row) + "\n" for row in rows))


class JsonlError(ValueError):
    """A line of a JSON Lines file that is not JSON (``line`` is 1-based), or a file that is not UTF-8.

    ``reason`` is the parser's message; ``column`` is set for bad JSON, ``byte`` for bad UTF-8. Callers
    reword it for their readers (a data mirror, an lm-eval samples file).
    """

    def __init__(self, path: Path | str, line: int, reason: str, *, column: int | None = None,
                 byte: int | None = None) -> None:
        self.path, self.line, self.reason, self.column, self.byte = Path(path), line, reason, column, byte
        where = f"at column {column}" if column is not None else f"at byte {byte}"
        kind = "not valid UTF-8" if byte is not None else "not JSON"
        super().__init__(f"{path}:{line}: {kind} ({reason} {where})")


def _parse_lines(lines: Iterable[str], path: Path | str) -> Iterator[tuple[int, str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JsonlError(path, number, exc.msg, column=exc.colno) from None
        yield number, line, value


def iter_jsonl(path: Path) -> Iterator[tuple[int, str, Any]]:
    """(line number, raw line, parsed value) for each non-blank line of a JSON Lines file.

    Raises :class:`JsonlError` (a ValueError) at the first line that is not JSON, or when the file is not
    UTF-8 (then ``line`` is the line holding the bad byte).
    """
    try:
        with path.open("r", encoding="utf-8") as handle:
            yield from _parse_lines(handle, path)
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise JsonlError(path, line, exc.reason, byte=exc.start) from None


def parse_jsonl(data: bytes | str, path: Path | str = "<jsonl>") -> list[Any]:
    """The values of JSON Lines text already read (``path`` only names it in errors)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return [value for _, _, value in _parse_lines(text.splitlines(), path)]


def read_jsonl(path: Path) -> list[Any]:
    """The values of every non-blank line of a JSON Lines file (see :func:`iter_jsonl` for errors)."""
    return [value for _, _, value in iter_jsonl(path)]


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
