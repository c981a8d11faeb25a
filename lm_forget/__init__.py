"""lm-forget: study how language models forget.

A binarized lm-evaluation-harness task suite, a random-label forget trainer on TRL + PEFT, and
analysis of what predicts forgetting. Heavy dependencies are imported lazily so that
``import lm_forget`` (and the interpreter start-up hook) stay instant.
"""


TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at interpreter start

__version__ = "0.1.0"

__all__ = ["__version__", "task_manager", "load_docs", "suite_task_names"]

if TYPE_CHECKING:  # pragma: no cover
    from lm_forget.data.api import load_docs, suite_task_names
    from lm_forget.harness import task_manager

_LAZY = {
    "task_manager": "lm_forget.harness",
    "load_docs": "lm_forget.data.api",
    "suite_task_names": "lm_forget.data.api",
}


def __getattr__(name: str):  # noqa: ANN202 - lazy attributes (PEP 562)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lm_forget' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
