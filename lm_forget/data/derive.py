"""``lm-forget tasks derive``: make a forget task from any lm-eval multiple-choice task."""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

from lm_forget.data.build import BuiltTask, load_or_build
from lm_forget.data.config import DataConfig
from lm_forget.data.registry import SUITE_PREFIX, TaskSpec
from lm_forget.data.source import lm_eval_tasks_dir
from lm_forget.data.yamls import render_derived_yaml
from lm_forget.errors import ConfigError

log = logging.getLogger(__name__)


def find_source_config(source: str) -> str:
    """The YAML path of lm-eval task ``source`` (relative to lm_eval/tasks when built in)."""
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._index import Kind

    if source.startswith(SUITE_PREFIX):
        raise ConfigError(f"{source!r} is already a forget task; derive from its lm-eval source task instead.")
    manager = TaskManager()
    entry = manager.task_index.get(source)
    if entry is None:
        close = difflib.get_close_matches(source, manager.all_subtasks, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(f"lm-eval has no task {source!r}.{hint} `lm_eval ls tasks` lists them.")
    if entry.kind in (Kind.GROUP, Kind.TAG):
        members = sorted(entry.tags)[:8]
        raise ConfigError(
            f"{source!r} is an lm-eval {entry.kind.name.lower()}, not a single task; derive its tasks one by one"
            + (f" (e.g. {', '.join(members)})." if members else ".")
        )
    if entry.yaml_path is None:
        raise ConfigError(f"{source!r} is a Python-defined lm-eval task without a YAML; it cannot be derived.")
    path = Path(entry.yaml_path).resolve()
    builtin = lm_eval_tasks_dir().resolve()
    return str(path.relative_to(builtin)) if path.is_relative_to(builtin) else str(path)


def derive_task(source: str, out_dir: Path, *, config: DataConfig | None = None,
                progress: bool = False) -> tuple[Path, BuiltTask]:
    """Build ``forget_<source>`` from lm-eval task ``source`` and write its YAML into ``out_dir``."""
    spec = TaskSpec(name=SUITE_PREFIX + source, source_task=source, source_config=find_source_config(source),
                    domain="derived", rewrite="auto")
    built = load_or_build(spec, config or DataConfig(), progress=progress)  # validates source and data first
    multi_context = any(doc["continuation"] for doc in built.splits["test"])
    spec = TaskSpec(**{**spec.__dict__, "multi_context": multi_context})
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{spec.name}.yaml"
    tmp = target.with_suffix(".yaml.tmp")
    tmp.write_text(render_derived_yaml(spec), encoding="utf-8")
    tmp.replace(target)
    log.info("wrote %s", target)
    return target, built
