"""Execute a plan: skip done steps, lock each step, write ``done.json`` last, resume interrupted training."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_forget.errors import ConfigError
from lm_forget.formats import PLAN_FILE, STEP_SETTINGS_FILE, STUDY_CONFIG_FILE
from lm_forget.io import atomic_write_json, atomic_write_text
from lm_forget.modeling import ModelRef
from lm_forget.run.graph import Plan, Step
from lm_forget.run.key_schema import KEY_SCHEMA_FIELD, KEY_SCHEMA_VERSION, refuse_other_key_schema
from lm_forget.run.models import ModelPool, eval_pool, trained_ref
from lm_forget.run.shard import shard_cells
from lm_forget.run.training import last_checkpoint

log = logging.getLogger(__name__)

# statuses shown by --dry-run and returned by execute()
DONE, RUN, RESUME, OTHER_SHARD, WAIT = "done", "will run", "will resume", "other shard", "waits for shards"


@dataclass
class RunContext:
    """What executors share during one ``execute`` call."""

    plan: Plan
    pool: Any  # ModelPool (hf) or VLLMPool (vllm): run/models.eval_pool
    managers: dict[tuple[str, ...], Any] = field(default_factory=dict)
    task_objects: dict[tuple[str, ...], list[Any] | None] = field(default_factory=dict)

    @property
    def config(self):
        return self.plan.config

    def base_ref(self) -> ModelRef:
        m = self.config.model
        return ModelRef(self.config.model_path, m.revision, m.tokenizer, m.dtype, gguf_file=m.gguf_file)

    def ref_for(self, step: Step) -> ModelRef:
        """The model an eval/features step looks at: the output of the train step it depends on."""
        train_deps = [d for d in step.deps if self.plan.step(d).kind == "train"]
        if not train_deps:
            return self.base_ref()
        return trained_ref(self.base_ref(), self.plan.step(train_deps[0]).output)

    def manager(self, tasks: list[str], docs: dict[str, Any] | None = None):
        from lm_forget.run.evaluate import task_manager_for

        key = (*tasks, *sorted((docs or {}).items()))
        if key not in self.managers:
            self.managers[key] = task_manager_for(self.config, tasks, docs)
        return self.managers[key]

    def tasks(self, tasks: list[str], docs: dict[str, Any] | None = None) -> list[Any] | None:
        """Loaded lm-eval tasks, built once per run and reused by every evaluation of the same tasks."""
        from lm_forget.run.evaluate import load_tasks

        key = (*tasks, *sorted((docs or {}).items()))
        if key not in self.task_objects:
            self.task_objects[key] = load_tasks(self.manager(tasks, docs), tasks)
        return self.task_objects[key]


def _exec_eval(step: Step, ctx: RunContext) -> dict[str, Any]:
    from lm_forget.run.evaluate import evaluate_model

    tasks = step.settings["tasks"]
    docs = step.settings.get("forget_set")  # forget-set steps: the trained docs, not the held-out split
    scores = evaluate_model(ctx.config, ctx.ref_for(step), tasks, step.output, pool=ctx.pool,
                            manager=ctx.manager(tasks, docs), task_objects=ctx.tasks(tasks, docs), docs=docs,
                            bootstrap_iters=step.settings.get("bootstrap_iters", 0))
    return {"scores": scores, "model_args": ctx.ref_for(step).model_args()}


def _exec_train(step: Step, ctx: RunContext) -> dict[str, Any]:
    from lm_forget.run.training import run_train

    config = ctx.config
    ctx.pool.close()  # free the evaluation model's memory (a 7B on one GPU) before training loads its own
    init = None
    if step.deps:  # forget continues the fine-tune output (its adapter, or its full weights)
        init = str(ctx.plan.step(step.deps[0]).output)
    if step.stage == "finetune":
        return run_train(config, config.finetune, stage="finetune", tasks=step.settings["tasks"],
                         num_examples=config.finetune.num_examples, seed=step.settings["train"]["seed"], init=None,
                         output_dir=step.output)
    if step.stage in ("relearn", "relearn_control"):  # gold labels again on k docs (control: pretrained, no init)
        from lm_forget.run.relearn_pools import relearn_docs

        settings = step.settings
        task, docs = relearn_docs(config, settings)
        return run_train(config, config.relearn, stage="relearn", tasks=[task],
                         num_examples=settings["num_examples"], seed=settings["seed"], init=init,
                         output_dir=step.output, docs=docs, lora=settings["train"]["use_lora"])
    record = run_train(config, config.forget, stage="forget", tasks=[step.settings["task"]],
                       num_examples=step.settings["num_examples"], seed=step.settings["seed"], init=init,
                       output_dir=step.output, method=step.settings["train"].get("method"))
    return record


def _exec_features(step: Step, ctx: RunContext) -> dict[str, Any]:
    from lm_forget.run.steps.features import run_features

    return run_features(step, ctx)


def _exec_analyze(step: Step, ctx: RunContext) -> dict[str, Any]:
    from lm_forget.run.steps.analyze import run_analysis

    ctx.pool.close()
    return run_analysis(step, ctx)


def _exec_push(step: Step, ctx: RunContext) -> dict[str, Any]:
    from lm_forget.run.steps.push import run_push

    return run_push(step, ctx)


def _exec_mia(step: Step, ctx: RunContext) -> dict[str, Any]:
    from lm_forget.run.deep_steps import run_mia

    return run_mia(step, ctx)


def _exec_quantized(step: Step, ctx: RunContext) -> dict[str, Any]:
    from lm_forget.run.deep_steps import run_quantized

    return run_quantized(step, ctx)


EXECUTORS: dict[str, Callable[[Step, RunContext], dict[str, Any]]] = {
    "eval": _exec_eval,
    "train": _exec_train,
    "features": _exec_features,
    "analyze": _exec_analyze,
    "push": _exec_push,
    "mia": _exec_mia,
    "quantized": _exec_quantized,
}


def selected_steps(plan: Plan, shard: tuple[int, int] | None) -> list[Step]:
    """The steps a shard runs: the shared ones (every shard, under a lock) plus its own cells."""
    mine = set(shard_cells(plan.cells, shard))
    return [s for s in plan.steps if s.cell is None or s.cell in mine]


def status_of(step: Step, plan: Plan, selected: set[str]) -> str:
    """One of DONE, RUN, RESUME, OTHER_SHARD, WAIT."""
    if step.is_done():
        return DONE
    if step.name not in selected:
        return OTHER_SHARD
    if step.kind == "analyze":
        by_name = plan.by_name
        if any(by_name[d].cell is not None and d not in selected and not by_name[d].is_done() for d in step.deps):
            return WAIT
    if step.kind == "train" and last_checkpoint(step.output) is not None:
        return RESUME
    return RUN


def describe(plan: Plan, shard: tuple[int, int] | None = None) -> list[dict[str, str]]:
    """One row per step: name, status, folder (what ``--dry-run`` prints)."""
    selected = {s.name for s in selected_steps(plan, shard)}
    return [{"step": s.name, "status": status_of(s, plan, selected), "dir": str(s.dir)} for s in plan.steps]


def _lock(step: Step):
    from filelock import FileLock

    step.dir.parent.mkdir(parents=True, exist_ok=True)
    # shards of a job array share the run dir: one runs a shared step, the others wait and then skip it
    return FileLock(str(step.dir.parent / f".{step.dir.name}.lock"))


def run_step(step: Step, ctx: RunContext) -> tuple[dict[str, Any], bool]:
    """Run one step (under its lock) unless done; write its ``done.json`` last.

    Returns ``(record, ran)``: ``ran`` is False when the step was done already (by another runner sharing the
    run dir, which held the lock), so two runners never both count it."""
    with _lock(step):
        if step.is_done():
            return step.done_record(), False
        missing = [d for d in step.deps if not ctx.plan.step(d).is_done()]
        if missing:
            raise ConfigError(f"step {step.name} needs {missing[0]}, which is not done; run the missing steps "
                              "first (without --shard, or the shard that owns them).")
        for dep in step.deps:  # a done.json beside missing or cut-off outputs (an interrupted copy) is not done
            ctx.plan.step(dep).check_complete()
        step.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(step.dir / STEP_SETTINGS_FILE, {"step": step.name, "key": step.key, "deps": list(step.deps),
                                                       KEY_SCHEMA_FIELD: KEY_SCHEMA_VERSION, "settings": step.settings})
        started = time.time()
        outputs = EXECUTORS[step.kind](step, ctx)
        record = {"step": step.name, "key": step.key, KEY_SCHEMA_FIELD: KEY_SCHEMA_VERSION, "kind": step.kind,
                  "cell": step.cell.id if step.cell else None,
                  "seconds": round(time.time() - started, 3), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  **outputs}
        atomic_write_json(step.done_path, record)
        return record, True


def is_study_dir(root: Path) -> bool:
    """True when ``root`` holds an lm-forget study (its plan.json, resolved config.yaml or a stage's folder)."""
    from lm_forget.run.schema import STAGES

    return ((root / PLAN_FILE).is_file() or (root / STUDY_CONFIG_FILE).is_file()
            or any((root / stage).is_dir() for stage in STAGES))


def check_run_dir(config: Any) -> None:
    """Refuse a run dir that is a file, a non-empty folder that is not a study, or one that is or lies inside an
    input (the model folder, a task folder, the data mirror) or holds one where the run writes -- before anything
    is written. A run dir may hold inputs elsewhere, and the study's own YAML (the demo's layout)."""
    from lm_forget.data.mirrors import mirror_root
    from lm_forget.outdirs import refuse_foreign, refuse_overlap
    from lm_forget.run.schema import STAGES

    root = config.run_path
    written = {*STAGES, PLAN_FILE, STUDY_CONFIG_FILE}  # what the runner writes at the run dir's top
    inputs = {"model.name_or_path": config.model_path, "the data mirror (LM_FORGET_DATA_DIR)": mirror_root(),
              **{f"tasks.task_dirs {d}": d for d in config.task_dir_paths}}
    refuse_overlap(root, inputs, flag="run_dir", contains_ok=lambda rel: rel.parts[0] not in written)
    holds_source = bool(config.source_file) and Path(config.source_file).parent == Path(root).resolve()
    refuse_foreign(root, lambda folder: is_study_dir(folder) or holds_source, flag="run_dir",
                   what="an lm-forget study", marker=PLAN_FILE)


def write_run_files(plan: Plan) -> None:
    """``config.yaml`` (as resolved) and ``plan.json`` (every step and its folder) at the run dir's top."""
    import yaml

    root = plan.config.run_path
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / STUDY_CONFIG_FILE, yaml.safe_dump(plan.config.to_dict(), sort_keys=False))
    rows = [{"step": s.name, "kind": s.kind, "stage": s.stage, "cell": s.cell.id if s.cell else None, "key": s.key,
             "dir": str(s.dir.relative_to(root)), "deps": list(s.deps)} for s in plan.steps]
    atomic_write_text(root / PLAN_FILE, json.dumps(rows, indent=2) + "\n")


@dataclass
class RunSummary:
    """What ``execute`` did: per step, ``done`` (before), ``ran``, or a status from ``describe``."""

    rows: list[dict[str, Any]]

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)


def execute(plan: Plan, *, shard: tuple[int, int] | None = None, dry_run: bool = False,
            pool: ModelPool | None = None, on_step: Callable[[int, int, Step, str], None] | None = None) -> RunSummary:
    """Run the plan's steps in order: done steps are skipped, other shards' cells left alone.

    ``on_step(index, total, step, event)`` is called with event ``start``, ``skip`` or ``end`` (the CLI
    prints from it).
    """
    check_run_dir(plan.config)
    refuse_other_key_schema(plan.config.run_path, sorted({s.dir.parent for s in plan.steps}))
    rows = describe(plan, shard)
    if dry_run:
        return RunSummary(rows)
    if not any(r["status"] in (RUN, RESUME, WAIT) for r in rows):
        return RunSummary(rows)  # a finished study writes nothing (it may live on a read-only filesystem)
    write_run_files(plan)
    if plan.config.threads:
        import torch

        torch.set_num_threads(plan.config.threads)
    ctx = RunContext(plan, pool or eval_pool(plan.config))
    todo = [(plan.step(r["step"]), r) for r in rows if r["status"] in (RUN, RESUME, WAIT)]
    selected = {s.name for s in selected_steps(plan, shard)}
    for index, (step, row) in enumerate(todo, start=1):
        if step.kind == "analyze" and status_of(step, plan, selected) == WAIT:
            row["status"] = WAIT
            if on_step:
                on_step(index, len(todo), step, "skip")
            continue
        if on_step:
            on_step(index, len(todo), step, "start")
        _, ran = run_step(step, ctx)  # another runner may have finished it meanwhile
        row["status"] = "ran" if ran else DONE
        if on_step:
            on_step(index, len(todo), step, "end")
    ctx.pool.close()
    return RunSummary(rows)
