"""Interpreter start-up hook (loaded from ``lm_forget_startup.pth``).

lm-eval 0.4.13 has no entry point for external tasks, so this arms a post-import patch: only when
``lm_eval.tasks.manager`` is imported does ``TaskManager.__init__`` learn to add lm-forget's
``task_configs`` (and ``LM_FORGET_TASKS_DIR``) to its include paths. Importing this module must stay
near-free: ``os`` and ``sys`` only (not even importlib.abc, which costs ~10 ms), never lm_eval.
Set ``LM_FORGET_DISABLE_HOOK=1`` to switch it off.
"""


import os
import sys

TARGET_MODULE = "lm_eval.tasks.manager"
DISABLE_ENV = "LM_FORGET_DISABLE_HOOK"
_PATCHED_FLAG = "_lm_forget_patched"
_EXPECTED_PARAMS = ("self", "verbosity", "include_path", "include_defaults", "metadata")


def suite_include_paths() -> list[str]:
    """The task folders lm-forget contributes: the shipped suite, then ``LM_FORGET_TASKS_DIR`` entries."""
    here = os.path.dirname(os.path.abspath(__file__))
    shipped = os.path.join(here, "task_configs")
    if not os.path.isdir(shipped):
        shipped = os.path.join(os.path.dirname(here), "task_configs")
    extra = [p for p in os.environ.get("LM_FORGET_TASKS_DIR", "").split(os.pathsep) if p.strip()]
    return [shipped, *(os.path.abspath(os.path.expanduser(p)) for p in extra)]


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

    def __init__(self, *args, **kwargs):  # noqa: N807 - mirrors the method being wrapped
        bound = signature.bind(self, *args, **kwargs)
        bound.arguments["include_path"] = merge_include_paths(
            bound.arguments.get("include_path"), suite_include_paths()
        )
        return init(*bound.args, **bound.kwargs)

    __init__.__wrapped__ = init  # type: ignore[attr-defined]
    __init__.__doc__ = init.__doc__
    setattr(__init__, _PATCHED_FLAG, True)
    manager_cls.__init__ = __init__  # type: ignore[union-attr]
    return True


class _PatchingLoader:
    """Wraps the real loader of the target module and patches it right after it executes."""

    def __init__(self, wrapped) -> None:  # type: ignore[no-untyped-def]
        self._wrapped = wrapped

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return self._wrapped.create_module(spec)

    def exec_module(self, module) -> None:  # type: ignore[no-untyped-def]
        self._wrapped.exec_module(module)  # type: ignore[attr-defined]
        try:
            patch_task_manager(module)
        except Exception as exc:  # never break lm_eval because of us
            import warnings

            warnings.warn(f"lm-forget: start-up hook failed ({exc!r}); forget_* tasks not registered.", stacklevel=2)


class _ManagerFinder:
    """Finds nothing itself: it only wraps the loader of ``lm_eval.tasks.manager`` once."""

    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname != TARGET_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Arm the hook (idempotent). A no-op when disabled via ``LM_FORGET_DISABLE_HOOK``."""
    if os.environ.get(DISABLE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        return
    if any(isinstance(f, _ManagerFinder) for f in sys.meta_path):
        return
    already = sys.modules.get(TARGET_MODULE)
    if already is not None:
        patch_task_manager(already)
        return
    sys.meta_path.insert(0, _ManagerFinder())
