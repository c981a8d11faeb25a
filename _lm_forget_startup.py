"""lm-forget's interpreter start-up hook, armed by ``lm_forget_startup.pth`` (the ``_distutils_hack`` pattern).

A top-level module on purpose: the ``.pth`` runs in every interpreter of the environment, so it must not pay
for importing the ``lm_forget`` package. It imports ``os`` and ``sys`` only (both loaded before ``site``
runs; not even importlib.abc, ~10 ms) and only inserts a finder. When ``lm_eval.tasks.manager`` is imported,
the finder wraps its loader so that ``lm_forget._startup.patch_task_manager`` runs right after the module
executes. ``LM_FORGET_DISABLE_HOOK=1`` switches it off.
"""

import os
import sys

TARGET_MODULE = "lm_eval.tasks.manager"
DISABLE_ENV = "LM_FORGET_DISABLE_HOOK"
_MARK = "_lm_forget_hook"  # on our finder: recognised even if this module is loaded twice


def disabled() -> bool:
    """True when ``LM_FORGET_DISABLE_HOOK`` is 1/true/yes/on (the .pth line tests the same, before importing us)."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class _PatchingLoader:
    """Wraps the real loader of the target module and patches it right after it executes."""

    def __init__(self, wrapped) -> None:  # type: ignore[no-untyped-def]
        self._wrapped = wrapped

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return self._wrapped.create_module(spec)

    def exec_module(self, module) -> None:  # type: ignore[no-untyped-def]
        self._wrapped.exec_module(module)  # type: ignore[attr-defined]
        try:
            from lm_forget._startup import patch_task_manager

            patch_task_manager(module)
        except Exception as exc:  # never break lm_eval because of us
            import warnings

            warnings.warn(f"lm-forget: start-up hook failed ({exc!r}); forget_* tasks not registered.", stacklevel=2)


class _ManagerFinder:
    """Finds nothing itself: it only wraps the loader of ``lm_eval.tasks.manager`` once."""

    _lm_forget_hook = True

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
    if disabled() or any(getattr(f, _MARK, False) for f in sys.meta_path):
        return
    already = sys.modules.get(TARGET_MODULE)
    if already is not None:  # lm_eval imported before us (e.g. install() called late): patch now
        from lm_forget._startup import patch_task_manager

        patch_task_manager(already)
        return
    sys.meta_path.insert(0, _ManagerFinder())
