"""The data layer's public API: resolve a forget task by name and get its docs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from lm_forget.data.build import BuiltTask, load_or_build
from lm_forget.data.config import DataConfig
from lm_forget.data.prepared import read_prepared
from lm_forget.data.registry import (
    SUITE_PREFIX,
    TaskSpec,
    get_suite_spec,
    suite_task_names,
    unknown_task_error,
)
from lm_forget.errors import ConfigError

__all__ = ["load_docs", "load_task", "resolve_task", "suite_task_names", "docs_from_kwargs", "spec_from_kwargs",
           "yaml_tasks"]


def spec_from_kwargs(kwargs: dict[str, Any]) -> TaskSpec:
    """The TaskSpec named by a YAML's ``dataset_kwargs`` (suite task, or a derived one)."""
    name = kwargs.get("forget_task")
    if not name:
        raise ConfigError("dataset_kwargs must name `forget_task` (or give `docs_dir`).")
    suite = get_suite_spec(name)
    if suite is not None and not kwargs.get("source_config"):
        return suite
    if not kwargs.get("source_task") or not kwargs.get("source_config"):
        raise unknown_task_error(name, suite_task_names())
    return TaskSpec(name=name, source_task=kwargs["source_task"], source_config=kwargs["source_config"],
                    domain=kwargs.get("domain", "derived"), rewrite=kwargs.get("rewrite", "auto"),
                    note=kwargs.get("note", ""))


def docs_from_kwargs(kwargs: dict[str, Any], *, progress: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Both splits for a YAML's dataset_kwargs: prepared docs (``docs_dir``) or a built forget task."""
    if kwargs.get("docs_dir"):
        return read_prepared(kwargs["docs_dir"])
    return load_or_build(spec_from_kwargs(kwargs), DataConfig.from_metadata(kwargs), progress=progress).splits


def _task_dirs(extra: Iterable[str | Path]) -> list[Path]:
    from lm_forget._startup import suite_include_paths

    return [Path(p) for p in suite_include_paths()] + [Path(p).expanduser() for p in check_task_dirs(extra)]


def check_task_dirs(task_dirs: Any) -> list[str | Path]:
    """``task_dirs`` as a list of folders; a single string or path (it would be read character by character) is
    a ConfigError saying how to write it."""
    if isinstance(task_dirs, str | Path):
        raise ConfigError(f"task_dirs must be a list of folders, got the {type(task_dirs).__name__} "
                          f"{str(task_dirs)!r}: write task_dirs=[{str(task_dirs)!r}]")
    if not isinstance(task_dirs, Iterable) or not all(isinstance(d, str | Path) for d in task_dirs):
        raise ConfigError(f"task_dirs must be a list of folder paths, got {task_dirs!r}")
    return list(task_dirs)


@lru_cache(maxsize=16)
def _scan_yaml_tasks(dirs: tuple[Path, ...]) -> dict[str, dict[str, Any]]:
    """``{task name: dataset_kwargs}`` for every YAML in ``dirs`` that loads through our loader."""
    import yaml

    from lm_forget.data.yaml_io import load_task_yaml

    found: dict[str, dict[str, Any]] = {}
    for root in dirs:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.yaml")):
            try:
                cfg = load_task_yaml(path)
            except (yaml.YAMLError, OSError):
                continue
            ours = isinstance(cfg, dict) and isinstance(cfg.get("task"), str) and bool(cfg.get("dataset_kwargs"))
            if ours and ("lm_forget.data.loader" in str(cfg.get("custom_dataset", ""))
                         or cfg["task"].startswith(SUITE_PREFIX)):
                found.setdefault(cfg["task"], dict(cfg["dataset_kwargs"]))
    return found


def yaml_tasks(task_dirs: Sequence[str | Path] = ()) -> dict[str, dict[str, Any]]:
    """``{task name: dataset_kwargs}`` of forget tasks in the suite folder, LM_FORGET_TASKS_DIR, ``task_dirs``."""
    return _scan_yaml_tasks(tuple(_task_dirs(task_dirs)))


def resolve_task(name: str, *, task_dirs: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The dataset_kwargs that build task ``name``: suite registry first, then task YAML folders."""
    if not isinstance(name, str):
        raise ConfigError(f"a task name is a string like 'forget_cola', got {name!r}")
    check_task_dirs(task_dirs)
    if get_suite_spec(name) is not None:
        return {"forget_task": name}
    found = yaml_tasks(task_dirs)
    if name in found:
        return found[name]
    raise unknown_task_error(name, sorted(set(suite_task_names()) | set(found)))


def load_task(name: str, *, task_dirs: Sequence[str | Path] = (), data: DataConfig | None = None,
              seed: int | None = None, train_size: int | None = None, eval_size: int | None = None,
              refresh: bool = False, progress: bool = False) -> BuiltTask:
    """Build (or load from cache) a suite or derived forget task, with its report (``data``: see load_docs)."""
    config = data_config(data, seed, train_size, eval_size)
    kwargs = resolve_task(name, task_dirs=task_dirs)
    if kwargs.get("docs_dir"):
        return BuiltTask(name, read_prepared(kwargs["docs_dir"]), {"task": name, "docs_dir": kwargs["docs_dir"]})
    return load_or_build(spec_from_kwargs(kwargs), config, refresh=refresh, progress=progress)


def load_docs(task: str, split: str = "train", *, task_dirs: Sequence[str | Path] = (),
              data: DataConfig | None = None, seed: int | None = None, train_size: int | None = None,
              eval_size: int | None = None) -> list[dict[str, Any]]:
    """The binarized docs of ``task``'s ``split`` ("train" = forget pool, "test" = held-out evaluation).

    ``data`` is the run's ``DataConfig``; ``seed``/``train_size``/``eval_size`` are a shorthand for one
    (not both).
    """
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    built = load_task(task, task_dirs=task_dirs, data=data_config(data, seed, train_size, eval_size))
    return built.splits[split]


def data_config(data: DataConfig | None, seed: int | None = None, train_size: int | None = None,
                eval_size: int | None = None) -> DataConfig:
    """``data``, or a ``DataConfig`` from the shorthand keywords (defaults for the ones not given)."""
    shorthand = {k: v for k, v in (("seed", seed), ("train_size", train_size), ("eval_size", eval_size))
                 if v is not None}
    if data is not None and shorthand:
        raise ConfigError(f"pass data=DataConfig(...) or {', '.join(shorthand)}, not both")
    return data if data is not None else DataConfig(**shorthand)

