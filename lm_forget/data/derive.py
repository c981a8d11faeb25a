"""``lm-forget tasks derive``: make a forget task from any lm-eval multiple-choice task.

Several sources are derived all or nothing: every name and ``output_type`` is checked first, then every
task is built, and only then are the YAMLs written, so one bad name never leaves a half-written folder.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lm_forget.data.build import BuiltTask, load_or_build
from lm_forget.data.config import DataConfig
from lm_forget.data.registry import SUITE_PREFIX, TaskSpec
from lm_forget.data.source import lm_eval_tasks_dir, split_fields
from lm_forget.data.yamls import render_derived_yaml
from lm_forget.errors import ConfigError
from lm_forget.io import atomic_write_text

log = logging.getLogger(__name__)


def _manager():
    from lm_eval.tasks import TaskManager

    return TaskManager()


def find_source_config(source: str, manager: Any = None) -> str:
    """The YAML path of lm-eval task ``source`` (relative to lm_eval/tasks when built in)."""
    from lm_eval.tasks._index import Kind

    if source.startswith(SUITE_PREFIX):
        raise ConfigError(f"{source!r} is already a forget task; derive from its lm-eval source task instead.")
    from lm_forget.data.registry import get_suite_spec

    if get_suite_spec(SUITE_PREFIX + source) is not None:
        raise ConfigError(f"{source!r} is already in the suite as {SUITE_PREFIX + source}; a derived task of that "
                          "name would clash with it (every `lm-forget eval` would then find the task twice). Use "
                          f"{SUITE_PREFIX + source} as it is.")
    manager = manager or _manager()
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


def check_source(source: str, manager: Any = None) -> TaskSpec:
    """The spec of ``forget_<source>``, after checking the name and ``output_type`` (no data is read)."""
    spec = TaskSpec(name=SUITE_PREFIX + source, source_task=source,
                    source_config=find_source_config(source, manager), domain="derived", rewrite="auto")
    output_type = split_fields(spec).get("output_type")
    if output_type != "multiple_choice":
        raise ConfigError(
            f"{source!r} has output_type {output_type!r}; only multiple_choice tasks can be binarized into "
            "forget tasks (two choices, one gold). Pick a multiple-choice task (`lm_eval ls tasks`)."
        )
    return spec


def check_sources(sources: Sequence[str]) -> list[TaskSpec]:
    """Specs for every source, or a ConfigError listing every bad name (nothing built or written)."""
    from lm_forget.data.registry import get_suite_spec

    # names refused without lm-eval's index (suite names and sources) do not pay for building it
    cheap = {s for s in sources if s.startswith(SUITE_PREFIX) or get_suite_spec(SUITE_PREFIX + s) is not None}
    manager = _manager() if set(sources) - cheap else None
    specs, problems = [], []
    for source in dict.fromkeys(sources):
        try:
            specs.append(check_source(source, manager))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        more = f" ({len(problems)} of {len(set(sources))} names are bad; nothing was written.)"
        raise ConfigError(" ".join(problems) + (more if len(sources) > 1 else " Nothing was written."))
    return specs


def _write(spec: TaskSpec, built: BuiltTask, out_dir: Path) -> Path:
    multi_context = any(doc["continuation"] for doc in built.splits["test"])
    spec = TaskSpec(**{**spec.__dict__, "multi_context": multi_context})
    target = out_dir / f"{spec.name}.yaml"
    atomic_write_text(target, render_derived_yaml(spec))
    log.info("wrote %s", target)
    return target


def derive_tasks(sources: Sequence[str], out_dir: Path, *, config: DataConfig | None = None,
                 progress: bool = False) -> list[tuple[Path, BuiltTask]]:
    """Build ``forget_<source>`` for every source, then write their YAMLs into ``out_dir`` (all or nothing)."""
    specs = check_sources(sources)
    built = [load_or_build(spec, config or DataConfig(), progress=progress) for spec in specs]
    return [(_write(spec, task, out_dir), task) for spec, task in zip(specs, built, strict=True)]


def derive_task(source: str, out_dir: Path, *, config: DataConfig | None = None,
                progress: bool = False) -> tuple[Path, BuiltTask]:
    """Build ``forget_<source>`` from lm-eval task ``source`` and write its YAML into ``out_dir``."""
    return derive_tasks([source], out_dir, config=config, progress=progress)[0]
