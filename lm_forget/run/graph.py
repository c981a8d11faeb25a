"""The step graph of a study over its run directory.

Each step (eval, train, features, analyze, push) owns one folder ``<run_dir>/<stage>/<label>-<key>``
where ``key`` hashes exactly the settings its outputs depend on, including the keys of the steps it
builds on. Change a fine-tune setting and every step downstream gets a new key (and reruns); change
an eval batch size and nothing does. A step is done when its ``done.json`` exists, written last.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_forget.data.hashing import canonical_json, stable_digest
from lm_forget.errors import ConfigError
from lm_forget.formats import DONE_FILE, RUN_STATE_FILE
from lm_forget.run.cells import (
    Cell,
    finetune_name,
    finetuned_eval_name,
    finetuned_features_name,
    forget_cells,
    method_spec,
)
from lm_forget.run.config import RunConfig
from lm_forget.run.keys import data_settings, key_form, train_settings
from lm_forget.run.study_features import PlanContext, ScoredModel, registered_features

OUTPUT = "output"
KEY_CHARS = 12
# Eval settings that change speed, not results: left out of the keys so they can change between runs.
# (Where results are also logged, hf_hub_log_args / wandb_args, does not change them either.)
_EVAL_SPEED_ONLY = ("batch_size", "device", "device_map", "swap_adapters", "forget_scope", "hf_hub_log_args",
                    "wandb_args")


@dataclass
class Step:
    """One unit of work with its own folder.

    Attributes:
        name: readable id, unique in the plan (``forget/demo_pattern/n200/s0``).
        kind: which executor runs it: ``eval``, ``train``, ``features``, ``analyze`` or ``push``.
        stage: the config stage it belongs to.
        settings: what the outputs depend on (hashed into ``key``).
        deps: names of the steps whose outputs it reads.
        cell: the forget cell it belongs to (None: shared by every shard).
        key: hash of settings and the deps' keys.
        dir: its folder in the run directory.
    """

    name: str
    kind: str
    stage: str
    settings: dict[str, Any]
    deps: tuple[str, ...] = ()
    cell: Cell | None = None
    key: str = ""
    dir: Path = field(default_factory=Path)

    @property
    def done_path(self) -> Path:
        return self.dir / DONE_FILE

    @property
    def output(self) -> Path:
        return self.dir / OUTPUT

    def is_done(self) -> bool:
        return self.done_path.is_file()

    def done_record(self) -> dict[str, Any]:
        """The step's ``done.json``; a damaged one is a ConfigError naming the file and the fix."""
        try:
            record = json.loads(self.done_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise self.incomplete(f"{self.done_path} is damaged ({type(exc).__name__}: {exc})") from None
        if not isinstance(record, dict):
            raise self.incomplete(f"{self.done_path} is damaged (not a JSON object)")
        return record

    def incomplete(self, reason: str) -> ConfigError:
        """The error for a step whose folder cannot be trusted: say which, why, and the fix."""
        return ConfigError(f"step {self.name} is incomplete: {reason}. Delete its folder ({self.dir}) and rerun.")

    def check_complete(self) -> None:
        """Verify a done step's outputs before trusting its ``done.json`` (an interrupted copy may lack them)."""
        self.done_record()
        if self.kind != "train":
            return
        from lm_forget.train.checkpoints import weights_problem
        from lm_forget.train.outputs import is_done

        if not is_done(self.output):
            raise self.incomplete(f"{self.output} holds no finished training run ({RUN_STATE_FILE} missing, "
                                  "damaged or not 'done')")
        if problem := weights_problem(self.output):
            raise self.incomplete(f"its trained weights in {self.output} are not whole: {problem}")


@dataclass
class Plan:
    """All steps of a study, in execution order (stage by stage, so adapters of a stage share a base)."""

    config: RunConfig
    steps: list[Step]

    @property
    def by_name(self) -> dict[str, Step]:
        return {s.name: s for s in self.steps}

    @property
    def cells(self) -> list[Cell]:
        """Every forget cell with a step, sorted by id."""
        return sorted({s.cell for s in self.steps if s.cell is not None}, key=lambda c: c.id)

    def steps_for(self, stage: str | None = None, **fields: Any) -> list[Step]:
        """The steps of ``stage`` (any stage: None) whose cell has the given fields
        (``plan.steps_for("eval_forget", task="forget_cola", n=64)``)."""
        return [s for s in self.steps if (stage is None or s.stage == stage)
                and (not fields or (s.cell is not None and s.cell.matches(**fields)))]

    def step(self, name: str) -> Step:
        return self.by_name[name]


def _forget_train(config: RunConfig, method: Any) -> dict[str, Any]:
    """The forget step's training settings, with its method (``forget.method``, or one ``forget.methods`` entry with
    its own settings) in the shape of ``MethodSpec.step_settings``."""
    train = train_settings(config.forget, exclude=("num_examples", "seed", "methods", "method"))
    if method is None:
        return {**train, "method": {"name": config.forget.method}}
    for name in ("learning_rate", "num_train_epochs", "max_steps"):
        if getattr(method, name) is not None:
            train[name] = getattr(method, name)
    return {**train, "method": method.step_settings()}


def _model_settings(config: RunConfig) -> dict[str, Any]:
    settings = {"name_or_path": config.model_path, "revision": config.model.revision,
                "tokenizer": config.model.tokenizer, "dtype": config.model.dtype}
    if config.model.gguf_file:  # only when set: the step keys of safetensors studies do not change
        settings["gguf_file"] = config.model.gguf_file
    return settings


def _eval_settings(config: RunConfig) -> dict[str, Any]:
    data = {k: v for k, v in config.eval.model_dump().items() if k not in _EVAL_SPEED_ONLY}
    data["data"] = data_settings(config.data)
    data["task_dirs"] = [str(p) for p in config.task_dir_paths]
    return data


def build_plan(config: RunConfig) -> Plan:
    """The full step graph of ``config`` (every shard's steps; sharding filters it at execution).

    The study features' steps (:mod:`lm_forget.run.study_features`) join at their hooks: after each model's
    held-out eval, after each eval stage, and after the eval stages.
    """
    stages = set(config.stages)
    model = _model_settings(config)
    tasks = config.tasks
    steps: list[Step] = []

    def add(name: str, kind: str, stage: str, settings: dict[str, Any], deps: tuple[str, ...] = (),
            cell: Cell | None = None, folder: str | None = None) -> Step:
        by_name = {s.name: s for s in steps}
        dep_keys = [by_name[d].key for d in deps]
        key = stable_digest(kind, canonical_json(key_form(settings)), *dep_keys)[:KEY_CHARS]
        label = name.split("/", 1)[1].replace("/", "-") if "/" in name else "all"
        step = Step(name=name, kind=kind, stage=stage, settings=settings, deps=deps, cell=cell, key=key,
                    dir=config.run_path / (folder or stage) / f"{label}-{key}")
        steps.append(step)
        return step

    eval_common = {"tasks": list(tasks.eval), **_eval_settings(config)}
    cells = forget_cells(config)
    features = registered_features()
    ctx = PlanContext(add, config, model, eval_common, cells)

    def scored(target: ScoredModel) -> None:  # each feature's evals of a model an eval stage scores
        for feature in features:
            if feature.at_model is not None:
                feature.at_model(ctx, target)

    def phase_done(phase: str) -> None:
        for feature in features:
            if feature.after_phase is not None:
                feature.after_phase(ctx, phase)

    if "eval_pretrained" in stages:
        add("eval_pretrained", "eval", "eval_pretrained", {"model": model, "phase": "pretrained", **eval_common})
        scored(ScoredModel("pretrained"))
        phase_done("pretrained")
    # one fine-tuned model on the mixture (None), or one per forgotten task (finetune.per_task); each once per
    # fine-tune seed (seeds.finetune; None: one fine-tune seeded by finetune.seed)
    ft_tasks: list[str | None] = list(tasks.forget) if config.finetune.per_task else [None]
    ft_models = [(t, fs) for t in ft_tasks for fs in config.finetune_seeds]

    def finetune_dep(task: str | None, seed: int | None) -> tuple[str, ...]:
        return (finetune_name(task if config.finetune.per_task else None, seed),) if "finetune" in stages else ()

    if "finetune" in stages:
        for t, fs in ft_models:
            train = train_settings(config.finetune)
            add(finetune_name(t, fs), "train", "finetune", {
                "model": model, "stage": "finetune", "tasks": [t] if t else list(tasks.finetune),
                "data": data_settings(config.data), "task_dirs": [str(p) for p in config.task_dir_paths],
                "train": train if fs is None else {**train, "seed": fs},
            })
    if "eval_finetuned" in stages:
        for t, fs in ft_models:
            scope = {"tasks": [t]} if t and config.eval.forget_scope == "self" else {}
            add(finetuned_eval_name(t, fs), "eval", "eval_finetuned", {"phase": "finetuned", **eval_common, **scope},
                finetune_dep(t, fs))
            scored(ScoredModel("finetuned", finetune_dep(t, fs), task=t, finetune_seed=fs))
        phase_done("finetuned")

    if "forget" in stages:
        for cell in cells:
            add(f"forget/{cell.id}", "train", "forget", {
                "model": model, "stage": "forget", "task": cell.task, "num_examples": cell.n, "seed": cell.seed,
                "data": data_settings(config.data), "task_dirs": [str(p) for p in config.task_dir_paths],
                "train": _forget_train(config, method_spec(config, cell.method)),
            }, finetune_dep(cell.task, cell.finetune_seed), cell=cell)
    if "eval_forget" in stages:
        for cell in cells:
            scope = {"tasks": [cell.task]} if config.eval.forget_scope == "self" else {}
            add(f"eval_forget/{cell.id}", "eval", "eval_forget", {"phase": "forget", **eval_common, **scope},
                (f"forget/{cell.id}",), cell=cell)
            scored(ScoredModel("forget", (f"forget/{cell.id}",), cell=cell))
        phase_done("forget")
    for feature in features:  # their own stages (relearn, mia, eval_quantized, eval_formats)
        if feature.after_forget is not None:
            feature.after_forget(ctx)
    if "features" in stages:
        feature_settings = {"tasks": list(tasks.eval), "layer": config.analysis.layer,
                            "split": config.analysis.feature_split, "limit": config.analysis.feature_limit,
                            "data": data_settings(config.data), "task_dirs": [str(p) for p in config.task_dir_paths]}
        probes = config.analysis.probes
        # probes on the pretrained model too: "forgetting is shallow" vs "the probe decodes what the
        # pretrained model already knew" (the key changes only when probes are on)
        add("features/pretrained", "features", "features", {"model": model, "phase": "pretrained",
                                                            **({"probes": True} if probes else {}),
                                                            **feature_settings})
        if "finetune" in stages:
            for t, fs in ft_models:  # per task: each fine-tuned model on its own task
                add(finetuned_features_name(t, fs), "features", "features",
                    {"phase": "finetuned", "probes": probes, **feature_settings, **({"tasks": [t]} if t else {})},
                    finetune_dep(t, fs))
        if probes and "forget" in stages:  # probes after forgetting: is the knowledge still decodable?
            for cell in cells:
                add(f"features/forget/{cell.id}", "features", "features",
                    {"phase": "forget", "probes": True, **feature_settings}, (f"forget/{cell.id}",), cell=cell)
    if "analyze" in stages:
        kinds = {"eval", "features"}.union(*(feature.kinds for feature in features))
        deps = tuple(s.name for s in steps if s.kind in kinds)
        seeds = {"seeds": config.forget_seeds}
        if config.seeds.finetune is not None:
            seeds["finetune_seeds"] = list(config.seeds.finetune)
        add("analyze", "analyze", "analyze", {"options": config.analysis.options, **seeds}, deps)
    if "push" in stages:
        for cell in cells:
            deps = (f"forget/{cell.id}",) + ((f"eval_forget/{cell.id}",) if "eval_forget" in stages else ())
            add(f"push/{cell.id}", "push", "push", {"repo_prefix": config.push.repo_prefix,
                                                    "revision": config.push.revision}, deps, cell=cell)
    return Plan(config=config, steps=steps)

