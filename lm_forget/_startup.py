"""What the start-up hook does once ``lm_eval.tasks.manager`` is imported: the ``TaskManager`` patch.

lm-eval 0.4.13 has no entry point for external tasks. The top-level ``_lm_forget_startup`` module (armed by
``lm_forget_startup.pth``, never importing this package) calls :func:`patch_task_manager` right after
lm-eval's manager module executes. From then on ``TaskManager.__init__`` treats the suite like lm-eval's
built-ins: whenever ``include_defaults`` is true it adds the suite's ``task_configs`` (and
``LM_FORGET_TASKS_DIR``) ahead of the caller's ``include_path``; with ``include_defaults=False`` it changes
nothing. Top-level imports stay ``os``/``sys`` only: :func:`suite_include_paths` is used by light code paths.
"""


import os

TASKS_DIR_ENV = "LM_FORGET_TASKS_DIR"
_INDEX_LOGGER = "lm_eval.tasks._index"  # where lm-eval reports a task name that replaces another
_PATCHED_FLAG = "_lm_forget_patched"
_EXPECTED_PARAMS = ("self", "verbosity", "include_path", "include_defaults", "metadata")


def shipped_task_dir() -> str:
    """The folder holding the suite's YAMLs (inside the wheel, or beside the package in an editable install)."""
    here = os.path.dirname(os.path.abspath(__file__))
    shipped = os.path.join(here, "task_configs")
    return shipped if os.path.isdir(shipped) else os.path.join(os.path.dirname(here), "task_configs")


def tasks_dir_entries() -> list[str]:
    """The entries of ``LM_FORGET_TASKS_DIR`` (``os.pathsep``-separated) as written, blanks dropped, in order."""
    return [p.strip() for p in os.environ.get(TASKS_DIR_ENV, "").split(os.pathsep) if p.strip()]


def tasks_dir_paths() -> list[str]:
    """The folders named by ``LM_FORGET_TASKS_DIR``, absolute, in order."""
    return [os.path.abspath(os.path.expanduser(p)) for p in tasks_dir_entries()]


def suite_include_paths() -> list[str]:
    """The task folders lm-forget contributes: the shipped suite, then ``LM_FORGET_TASKS_DIR`` entries."""
    return [shipped_task_dir(), *tasks_dir_paths()]


def merge_include_paths(user: object, ours: list[str]) -> list[str]:
    """Merge a user's ``include_path`` (None, str, Path or list) with ours; the user's come last so they win."""
    if user is None:
        user_list: list[str] = []
    elif isinstance(user, (list, tuple)):
        user_list = [os.fspath(p) for p in user]
    else:
        text = os.fspath(user)  # type: ignore[arg-type]
        # lm-eval documents "dir1:dir2" on the CLI; split only when the whole string is not a real path.
        user_list = text.split(os.pathsep) if not os.path.exists(text) and os.pathsep in text else [text]
    seen: set[str] = set()
    merged: list[str] = []
    for path in [*ours, *user_list]:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            merged.append(path)
    return merged


def _inside(path: str, folders: list[str]) -> str | None:
    real = os.path.realpath(path)
    for folder in folders:
        root = os.path.realpath(folder)
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return folder
    return None


def shadowing_error(overrides: list[tuple[str, str, str]], task_dirs: list[str]) -> str | None:
    """The refusal message for ``(name, new file, replaced file)`` overrides coming from ``task_dirs``, if any."""
    lines = []
    for name, new, old in overrides:
        folder = _inside(new, task_dirs)
        if folder is None:
            continue  # an explicit include_path overriding a task is lm-eval's documented behaviour
        if _inside(old, [shipped_task_dir()]):
            what = "lm-forget's suite task"
        elif _inside(old, task_dirs):
            what = "the task of another LM_FORGET_TASKS_DIR folder"
        else:
            what = "lm-eval's built-in task"
        lines.append(f"  - '{name}' in {new} (from {TASKS_DIR_ENV} folder {folder}) would replace {what} {old}")
    if not lines:
        return None
    return (
        f"lm-forget: a {TASKS_DIR_ENV} folder defines task names that already exist, and lm-forget does not replace "
        "tasks silently:\n" + "\n".join(lines) + "\nRename the task (its `task:` field), or remove the folder from "
        f"{TASKS_DIR_ENV}; to override a task on purpose, pass the folder to lm_eval with --include_path instead."
    )


def call_refusing_shadows(build, *args, **kwargs):  # type: ignore[no-untyped-def]
    """``build(*args, **kwargs)`` (a TaskManager or its ``__init__``); ConfigError if an ``LM_FORGET_TASKS_DIR``
    task replaced a built-in, suite or other tasks-dir task while lm-eval indexed the folders.

    lm-eval's index detects the replacement itself and logs it (name, new file, old file) at WARNING;
    we read those records, so the check costs nothing and sees exactly what lm-eval did.
    """
    task_dirs = tasks_dir_paths()
    if not task_dirs:
        return build(*args, **kwargs)
    import logging

    overrides: list[tuple[str, str, str]] = []
    logger = logging.getLogger(_INDEX_LOGGER)
    reported = logger.isEnabledFor(logging.WARNING) and not logger.disabled
    saved = (logger.level, logger.disabled)

    def spy(record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 3 and "overrides existing" in str(record.msg) \
                and args[1] is not None and args[2] is not None:
            overrides.append((str(args[0]), str(args[1]), str(args[2])))
        return reported  # records the user's logging config would have dropped stay dropped

    if not reported:  # e.g. lm_eval logging set to ERROR: hear the record anyway, show nothing more
        logger.disabled = False
        logger.setLevel(logging.WARNING)
    logger.addFilter(spy)
    try:
        result = build(*args, **kwargs)
    finally:
        logger.removeFilter(spy)
        if not reported:
            logger.setLevel(saved[0])
            logger.disabled = saved[1]
    message = shadowing_error(overrides, task_dirs)
    if message:
        from lm_forget.errors import ConfigError

        raise ConfigError(message)
    return result


def patch_task_manager(module: object) -> bool:
    """Patch ``module.TaskManager.__init__``; returns False (with one warning) if its signature changed."""
    import inspect
    import warnings

    manager_cls = getattr(module, "TaskManager", None)
    init = getattr(manager_cls, "__init__", None)
    if init is None:
        warnings.warn(
            "lm-forget: lm_eval.tasks.manager.TaskManager not found; forget_* tasks are not auto-registered. "
            "Pass --include_path $(lm-forget tasks path) or use `lm-forget eval`.",
            stacklevel=2,
        )
        return False
    if getattr(init, _PATCHED_FLAG, False):
        return True
    params = tuple(inspect.signature(init).parameters)
    if params[: len(_EXPECTED_PARAMS)] != _EXPECTED_PARAMS:
        warnings.warn(
            f"lm-forget: lm-eval's TaskManager.__init__ signature changed to {params}; the start-up hook is "
            "disabled and forget_* tasks are not auto-registered. Use `lm-forget eval ...` or "
            "--include_path $(lm-forget tasks path).",
            stacklevel=2,
        )
        return False

    signature = inspect.signature(init)
    defaults_on = signature.parameters["include_defaults"].default

    def __init__(self, *args, **kwargs):  # noqa: N807 - mirrors the method being wrapped
        bound = signature.bind(self, *args, **kwargs)
        if not bound.arguments.get("include_defaults", defaults_on):
            # like lm-eval's built-ins, the suite is a default: include_defaults=False indexes only include_path
            return init(self, *args, **kwargs)
        user_path = bound.arguments.get("include_path")
        bound.arguments["include_path"] = merge_include_paths(user_path, suite_include_paths())
        call_refusing_shadows(init, *bound.args, **bound.kwargs)
        self.include_path = user_path  # what lm-eval records is what its caller passed

    __init__.__wrapped__ = init  # type: ignore[attr-defined]
    __init__.__doc__ = init.__doc__
    setattr(__init__, _PATCHED_FLAG, True)
    manager_cls.__init__ = __init__  # type: ignore[union-attr]
    return True


def install() -> None:
    """Arm the start-up hook in this interpreter (what ``lm_forget_startup.pth`` does; idempotent)."""
    from _lm_forget_startup import install as arm

    arm()
