"""lm-forget: study how language models forget.

A binarized lm-evaluation-harness task suite, a random-label forget trainer on TRL + PEFT, and
analysis of what predicts forgetting. Heavy dependencies are imported lazily so that
``import lm_forget`` (and the interpreter start-up hook) stay instant.

The notebook API (README, "Python API")::

    results = lm_forget.evaluate(model, tasks)          # lm-eval's simple_evaluate dict, with per-doc samples
    run = lm_forget.train(ForgetConfig(...))            # a TrainResult (output_dir, metrics, ...)
    found = lm_forget.analyze(pretrained=..., finetuned=..., forget=...)   # a StudyResults
    found = lm_forget.Study("study.yaml").run()         # a whole study; .results() reads a finished one
"""


TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at interpreter start

__version__ = "0.1.0"

__all__ = [
    "AnalysisOptions",
    "DataConfig",
    "ForgetConfig",
    "ModelRef",
    "Study",
    "StudyResults",
    "TrainResult",
    "__version__",
    "analyze",
    "evaluate",
    "load_docs",
    "suite_task_names",
    "task_manager",
    "train",
]

if TYPE_CHECKING:  # pragma: no cover
    from lm_forget.analysis.options import AnalysisOptions
    from lm_forget.api.analysis import analyze
    from lm_forget.api.evaluation import evaluate
    from lm_forget.api.study import Study
    from lm_forget.api.study_results import StudyResults
    from lm_forget.data.api import load_docs, suite_task_names
    from lm_forget.data.config import DataConfig
    from lm_forget.harness import task_manager
    from lm_forget.modeling import ModelRef
    from lm_forget.train.api import TrainResult
    from lm_forget.train.config import ForgetConfig

_LAZY = {
    "task_manager": "lm_forget.harness",
    "load_docs": "lm_forget.data.api",
    "suite_task_names": "lm_forget.data.api",
    "evaluate": "lm_forget.api.evaluation",
    "analyze": "lm_forget.api.analysis",
    "Study": "lm_forget.api.study",
    "StudyResults": "lm_forget.api.study_results",
    "AnalysisOptions": "lm_forget.analysis.options",
    "DataConfig": "lm_forget.data.config",
    "ModelRef": "lm_forget.modeling",
    "ForgetConfig": "lm_forget.train.config",
    "TrainResult": "lm_forget.train.api",
}


def __getattr__(name: str):  # noqa: ANN202 - lazy attributes (PEP 562)
    import importlib

    if name == "train":  # the subpackage, callable: lm_forget.train(config) runs lm_forget.train.api.train
        return importlib.import_module("lm_forget.train")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lm_forget' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
