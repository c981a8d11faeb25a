"""The built-in lm-eval task a forget task is built from: its config, its splits, its docs.

The source task is instantiated with lm-eval's own ``ConfigurableTask`` (so ``process_docs``,
``doc_to_text``, ``doc_to_choice`` and ``doc_to_target`` are exactly lm-eval's), with dataset loading
redirected through :mod:`lm_forget.data.mirrors`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_forget.data.mirrors import SourceRef, load_split
from lm_forget.data.registry import TaskSpec
from lm_forget.errors import ConfigError, DataError


def lm_eval_tasks_dir() -> Path:
    """lm-eval's built-in task folder, found without importing lm_eval."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("lm-eval is not installed; install it with `pip install 'lm-eval>=0.4.13,<0.5'`.")
    return Path(next(iter(spec.submodule_search_locations))) / "tasks"


def source_config_path(spec: TaskSpec) -> Path:
    """Absolute path of the source task's YAML; a ConfigError when it does not exist."""
    path = Path(spec.source_config)
    if not path.is_absolute():
        path = lm_eval_tasks_dir() / path
    if not path.is_file():
        raise ConfigError(
            f"{spec.name}: source task {spec.source_task!r} is configured at {path}, which does not exist. "
            "The installed lm-eval may have moved it: check `lm_eval ls tasks`, then re-derive the task with "
            f"`lm-forget tasks derive {spec.source_task}`."
        )
    return path


def config_fingerprint(spec: TaskSpec) -> str:
    """Hash of the source YAML and the Python files beside it (prompt functions live there)."""
    path = source_config_path(spec)
    digest = hashlib.sha256(path.read_bytes())
    for helper in sorted(path.parent.glob("*.py")):
        digest.update(helper.name.encode())
        digest.update(helper.read_bytes())
    return digest.hexdigest()


def load_source_config(spec: TaskSpec) -> dict[str, Any]:
    """The source task's lm-eval config dict (includes merged, ``!function`` resolved)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    path = source_config_path(spec)
    try:
        cfg = load_yaml(path, resolve_func=True)
    except Exception as exc:
        raise ConfigError(f"{spec.name}: cannot read source task config {path}: {exc}") from None
    if cfg.get("task") != spec.source_task:
        raise ConfigError(
            f"{spec.name}: {path} defines task {cfg.get('task')!r}, not {spec.source_task!r}. "
            f"Re-derive with `lm-forget tasks derive {spec.source_task}`."
        )
    if cfg.get("output_type") != "multiple_choice":
        raise ConfigError(
            f"{spec.source_task!r} has output_type {cfg.get('output_type')!r}; only multiple_choice tasks "
            "can be binarized into forget tasks (two choices, one gold)."
        )
    return cfg


@dataclass(frozen=True)
class SourcePlan:
    """Which source splits feed the forget pool and the evaluation split."""

    train: SourceRef | None  # None: carve the forget pool out of the evaluation split
    eval: SourceRef
    dataset_kwargs: dict[str, Any]

    @property
    def carve_out(self) -> bool:
        return self.train is None

    def refs(self) -> list[SourceRef]:
        return [r for r in (self.train, self.eval) if r is not None]


def plan_sources(cfg: dict[str, Any]) -> SourcePlan:
    """Forget pool = the training split; evaluation = the split lm-eval evaluates (test, else validation)."""
    path, name = cfg.get("dataset_path"), cfg.get("dataset_name")
    eval_split = cfg.get("test_split") or cfg.get("validation_split")
    if not path or not eval_split:
        raise ConfigError(f"source task {cfg.get('task')!r} names no dataset_path or evaluation split.")
    train_split = cfg.get("training_split")
    return SourcePlan(
        train=SourceRef(path, name, train_split) if train_split else None,
        eval=SourceRef(path, name, eval_split),
        dataset_kwargs=dict(cfg.get("dataset_kwargs") or {}),
    )


def instantiate_source_task(cfg: dict[str, Any], plan: SourcePlan):
    """An lm-eval ``ConfigurableTask`` for the source, reading only the planned splits."""
    import datasets
    from lm_eval.api.task import ConfigurableTask

    loaded = datasets.DatasetDict({ref.split: load_split(ref, plan.dataset_kwargs) for ref in plan.refs()})

    def custom_dataset(**_: Any) -> datasets.DatasetDict:
        return loaded

    task_cfg = {k: v for k, v in cfg.items() if k not in {"tag", "group", "task_list", "include"}}
    task_cfg["custom_dataset"] = custom_dataset
    task_cfg["training_split"] = plan.train.split if plan.train else None
    if task_cfg.get("test_split"):
        task_cfg["validation_split"] = None
    task_cfg["fewshot_split"] = None
    try:
        return ConfigurableTask(config=task_cfg)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(
            f"lm-eval could not set up source task {cfg.get('task')!r} on the loaded data "
            f"({type(exc).__name__}: {exc}). Check that the data has the Hugging Face schema the task reads."
        ) from None


def source_docs(task, plan: SourcePlan) -> dict[str, Any]:
    """The processed source docs by role: ``{"train": list | None, "eval": list}`` of row dicts."""
    eval_docs = task.test_docs() if task.has_test_docs() else task.validation_docs()
    train_docs = task.training_docs() if plan.train is not None else None
    # plain lists: indexing an Arrow-backed Dataset row by row is ~20x slower
    return {"train": train_docs.to_list() if train_docs is not None else None, "eval": eval_docs.to_list()}


@contextlib.contextmanager
def cached_templates() -> Iterator[None]:
    """Reuse compiled Jinja templates while binarizing.

    lm-eval's ``apply_template`` compiles the template string anew for every doc (~0.5 ms each, most of
    a cold build); the compiled template renders identically, so caching it changes no output.
    """
    from lm_eval import utils

    original = utils.env.from_string
    cached = functools.lru_cache(maxsize=256)(original)
    utils.env.from_string = cached
    try:
        yield
    finally:
        utils.env.from_string = original


def split_fields(spec: TaskSpec) -> dict[str, Any]:
    """The split fields of the source YAML, read without resolving ``!function`` (fast, no lm_eval import)."""
    from lm_forget.data.yaml_io import load_task_yaml_merged

    return load_task_yaml_merged(source_config_path(spec))
