"""lm-eval integration: a TaskManager that sees the suite, and ``lm-forget eval`` pass-through.

Three ways to reach the ``forget_*`` tasks (all documented in the README):
1. the start-up hook (``lm_forget_startup.pth``) patches ``TaskManager`` when lm_eval is imported;
2. ``lm-forget eval ARGS...`` runs lm-eval's own CLI with ``--include_path`` added;
3. :func:`task_manager` for Python users of ``lm_eval.simple_evaluate``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lm_forget._startup import call_refusing_shadows, merge_include_paths, suite_include_paths


def task_manager(include_path: str | Path | Sequence[str | Path] | None = None, **kwargs: Any):
    """An ``lm_eval.tasks.TaskManager`` whose include paths hold the suite (plus ``include_path``).

    The suite is passed as an explicit include path, so it is there even with ``include_defaults=False``
    (lm-eval's built-ins are then skipped: seconds faster) and with the start-up hook switched off.

    Example::

        import lm_eval, lm_forget
        lm_eval.simple_evaluate(model="hf", model_args="pretrained=...", tasks=["forget_boolq"],
                                task_manager=lm_forget.task_manager())
    """
    from lm_eval.tasks import TaskManager

    paths = merge_include_paths(include_path, suite_include_paths())
    return call_refusing_shadows(TaskManager, include_path=paths, **kwargs)


def eval_main(argv: list[str]) -> int:
    """``lm-forget eval ARGS...``: lm-eval's CLI, unchanged, with the suite on its include path."""
    from lm_eval.__main__ import cli_evaluate

    if not argv or argv[0] in {"-h", "--help"}:
        print(
            "usage: lm-forget eval [lm_eval arguments...]\n\n"
            "Runs lm-eval's own CLI with the forget suite (and LM_FORGET_TASKS_DIR) on its include path, e.g.\n"
            "  lm-forget eval --model hf --model_args pretrained=gpt2 --tasks 'forget_*' --limit 20\n"
            "  lm-forget eval ls tasks\n"
            "Everything after `eval` is passed to lm_eval; see `lm_eval --help`."
        )
        return 0
    import lm_eval.tasks.manager as manager

    from lm_forget._startup import patch_task_manager

    # Patch in-process even when the start-up hook is switched off: the user asked for the suite.
    if not patch_task_manager(manager):
        from lm_forget.errors import ConfigError

        raise ConfigError("this lm-eval's TaskManager cannot be extended; pass --include_path "
                          f"{suite_include_paths()[0]} to lm_eval directly.")
    sys.argv = ["lm_eval", *argv]
    try:
        cli_evaluate()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except ValueError as exc:
        if "not found" not in str(exc).lower() or "task" not in str(exc).lower():
            raise
        raise _unknown_tasks_error(str(exc)) from None
    return 0


def _unknown_tasks_error(message: str):
    """lm-eval's 'Tasks not found: a, b' as one line with near names from the suite and the task folders."""
    import difflib
    import re

    from lm_forget.data.api import yaml_tasks
    from lm_forget.errors import ConfigError

    found = re.search(r"not found:\s*(.+?)(?:\.\s|\s*$)", message.split("\n")[0])
    missing = [m.strip() for m in (found.group(1) if found else "").split(",") if m.strip()]
    known = sorted(yaml_tasks())
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hints.append(f"{name!r} (did you mean: {', '.join(close)}?)" if close else repr(name))
    what = ", ".join(hints) if hints else message.split("\n")[0]
    return ConfigError(f"lm-eval has no task {what}. `lm-forget tasks list` shows the forget tasks, "
                       "`lm-forget eval ls tasks` all of lm-eval's; derived tasks need LM_FORGET_TASKS_DIR or "
                       "--include_path.")
