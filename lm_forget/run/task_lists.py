"""The task lists of a study (``tasks.finetune`` / ``forget`` / ``eval``): ``suite`` and fnmatch patterns
expanded when the ``tasks`` section is validated, into a new section (the config as written is never edited).

Patterns match the suite and the forget tasks of ``tasks.task_dirs`` (relative folders resolve against the
``base_dir`` of the validation context, as ``RunConfig.task_dir_paths`` does). Plain names are kept as written
and resolved later (``run/checks.py``), so an unknown name gets the did-you-mean of the section that lists it.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from lm_forget.errors import ConfigError

LISTS = ("finetune", "forget", "eval")  # the sections of forget tasks; tasks.utility is lm-eval's (utility_steps)


def expand_tasks(entries: list[str], known: list[str], where: str) -> list[str]:
    """Expand ``suite`` and fnmatch patterns; keep plain names (checked later); drop duplicates, keep order."""
    from lm_forget.data.api import suite_task_names

    out: list[str] = []
    for entry in entries:
        if entry == "suite":
            names = suite_task_names()
        elif any(ch in entry for ch in "*?["):
            names = [n for n in known if fnmatch.fnmatchcase(n, entry)]
            if not names:
                raise ConfigError(f"{where}: pattern {entry!r} matches no known task.")
        else:
            names = [entry]
        out += [n for n in names if n not in out]
    return out


def expanded_task_settings(tasks: Any, info: Any) -> Any:
    """A copy of the ``TaskSettings`` ``tasks`` with its forget-task lists expanded (a pydantic AfterValidator)."""
    from lm_forget.data.api import suite_task_names, yaml_tasks
    from lm_forget.run.schema import resolve_path

    base_dir = (info.context or {}).get("base_dir", ".")
    folders = [resolve_path(p, base_dir) for p in tasks.task_dirs]
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"tasks.task_dirs: {folder} is not a folder of task YAMLs.")
    if not any(getattr(tasks, name) for name in LISTS):
        return tasks
    known = list(dict.fromkeys([*suite_task_names(), *yaml_tasks(folders)]))
    return tasks.model_copy(update={name: expand_tasks(getattr(tasks, name), known, f"tasks.{name}") for name in LISTS})
