"""Output folders that never destroy inputs: one check for every command that writes a folder.

:func:`refuse_overlap` refuses an output location that is, contains or lies inside one of the command's inputs
(a model, an adapter, a data folder, a config file); :func:`refuse_foreign` refuses an existing non-empty
folder that is not the command's own kind of output (``analyze``'s report, ``train``'s run, ``run``'s study),
because writing there would mix with, or replace, files lm-forget did not make.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from lm_forget.errors import ConfigError


def _resolved(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def overlap(out: str | Path, inputs: Mapping[str, str | Path | None], *,
            contains_ok: Callable[[Path], bool] | None = None) -> tuple[str, Path, str] | None:
    """``(input name, input path, how)`` for the first local input that ``out`` is, contains or lies inside.

    ``contains_ok(relative path)`` may allow an input inside ``out`` where the command never writes.
    """
    target = _resolved(out)
    for name, value in inputs.items():
        if not value or not Path(str(value)).expanduser().exists():
            continue  # Hub ids and missing paths cannot be overwritten
        source = _resolved(str(value))
        if target == source:
            return name, source, "is"
        if source in target.parents:
            return name, source, "lies inside"
        if target in source.parents and not (contains_ok and contains_ok(source.relative_to(target))):
            return name, source, "contains"
    return None


def refuse_overlap(out: str | Path, inputs: Mapping[str, str | Path | None], *, flag: str,
                   contains_ok: Callable[[Path], bool] | None = None) -> None:
    """Raise ``ConfigError`` when the output ``out`` (given as ``flag``) is, contains or lies inside an input."""
    found = overlap(out, inputs, contains_ok=contains_ok)
    if found is None:
        return
    name, source, how = found
    raise ConfigError(f"{flag} {out} {how} the input {name} ({source}): writing there would overwrite what this "
                      f"command reads; nothing was written. Choose a {flag} outside every input.")


def visible_entries(folder: Path, *, hidden: bool = False) -> list[Path]:
    """The entries of ``folder``; hidden ones (locks, temp files of an atomic write) only when ``hidden``."""
    return sorted(p for p in folder.iterdir() if hidden or not p.name.startswith("."))


def refuse_foreign(out: str | Path, is_ours: Callable[[Path], bool], *, flag: str, what: str, marker: str,
                   why: str = "", hidden: bool = False) -> None:
    """Refuse ``out`` when it is a file, or a non-empty folder that ``is_ours`` does not recognise as ``what``.

    ``marker`` names the file that makes a folder ``what``; ``why`` (a clause such as ``"the report replaces the
    whole folder"``) says what writing there would do; ``hidden`` counts hidden entries too (for a folder that
    is replaced whole).
    """
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"{flag} {out} is a file, not a folder; nothing was written. Pass a new or empty folder.")
    entries = visible_entries(out, hidden=hidden)
    if not entries or is_ours(out):
        return
    shown = ", ".join(p.name for p in entries[:3]) + (", ..." if len(entries) > 3 else "")
    because = f", and {why}" if why else ""
    raise ConfigError(f"{flag} {out} exists and is not {what} (no {marker}; it holds {shown}){because}; nothing "
                      "was written. Pass a new or empty folder (or the folder of an earlier run of this command).")
