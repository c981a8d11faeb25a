"""The error hierarchy: every message says what was wrong, where, and how to fix it.

:func:`run_command` is the one place that turns an error into the line a user reads and an exit code;
every entry point (``lm-forget``, ``python -m lm_forget.train``) goes through it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

DEBUG_ENV = "LM_FORGET_DEBUG"


class LmForgetError(Exception):
    """Base class for errors that the CLI turns into one readable line and a non-zero exit."""

    exit_code = 2


class DataError(LmForgetError):
    """A dataset, mirror, cache or doc is missing or malformed."""


class ConfigError(LmForgetError):
    """A task name, config file or option is invalid."""


class HubError(LmForgetError):
    """A Hugging Face Hub operation failed (auth, permissions, network)."""


def debug_enabled() -> bool:
    """True when ``LM_FORGET_DEBUG`` asks for full tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in {"", "0", "false", "no"}


def did_you_mean(word: str, known: Sequence[str]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``known`` (difflib's default cutoff), or ``""``."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_key_message(key: str, known: Sequence[str]) -> str:
    """``unknown key 'k'. Did you mean ...? Allowed keys: ...`` (sorted) for a key of a settings mapping."""
    return f"unknown key {key!r}.{did_you_mean(key, known)} Allowed keys: {', '.join(sorted(known))}."


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name when it has none)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else exc.__class__.__name__


def run_command(prog: str, func: Callable[[list[str]], int | None], argv: Sequence[str]) -> int:
    """Run ``func(argv)``; our errors become one ``prog: error: ...`` line and their exit code.

    Anything else that escapes (a bug, or a library error no boundary translated) is one line too, naming
    its type and how to get the traceback; ``LM_FORGET_DEBUG=1`` (``lm-forget --debug``) re-raises instead.
    """
    try:
        return int(func(list(argv)) or 0)
    except LmForgetError as exc:
        if debug_enabled():
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `lm-forget tasks list | head`
        return 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug_enabled():
            raise
        print(f"{prog}: error: unexpected {type(exc).__name__}: {first_line(exc)}. Rerun with "
              f"{DEBUG_ENV}=1 (or `lm-forget --debug ...`) for the traceback, and please report it.", file=sys.stderr)
        return 1
