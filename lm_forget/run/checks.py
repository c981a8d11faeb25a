"""Cross-field checks of a run config: everything that can be checked before any work starts.

The schema (``run/schema.py``) checks each value's type; this module checks what needs several values or a
registry: stage order, task names and patterns, the forgetting-method and label-mode registries, trainer
settings against ``ForgetConfig``, analysis options against ``AnalysisOptions``, relearn sizes, the Hub.
"""

from __future__ import annotations

from lm_forget.errors import ConfigError, did_you_mean
from lm_forget.run.schema import STAGES, RunConfig
from lm_forget.run.section_checks import check_trainer_settings
from lm_forget.run.study_features import registered_features

# stage -> stages it needs in the same config (anything else may come from a model that is already fine-tuned).
STAGE_NEEDS = {
    "eval_finetuned": ("finetune",),
    "eval_forget": ("forget",),
    "relearn": ("forget",),
    "eval_relearn": ("relearn",),
    "mia": ("forget",),
    "eval_quantized": ("forget",),
    "eval_formats": ("forget",),
    "analyze": ("eval_forget",),
    "push": ("forget",),
}


def validate_stages(stages: list[str]) -> None:
    """Stages must be known, unique, in study order, and have what they need."""
    if not stages:
        raise ConfigError(f"stages: empty; list some of {', '.join(STAGES)} (in that order).")
    for stage in stages:
        if stage not in STAGES:
            raise ConfigError(f"stages: unknown stage {stage!r}.{did_you_mean(stage, STAGES)} "
                              f"Stages are: {', '.join(STAGES)}.")
    seen: set[str] = set()
    for stage in stages:
        if stage in seen:
            raise ConfigError(f"stages: {stage!r} is listed twice; each stage runs once.")
        seen.add(stage)
    for a, b in zip(stages, stages[1:], strict=False):
        if STAGES.index(b) < STAGES.index(a):
            raise ConfigError(
                f"stages: {b!r} cannot come after {a!r}: a study runs {' -> '.join(STAGES)}. "
                f"Put {b!r} before {a!r}."
            )
    for stage, needs in STAGE_NEEDS.items():
        if stage in seen:
            for need in needs:
                if need not in seen:
                    raise ConfigError(f"stages: {stage!r} needs {need!r} in the same config (it uses its output).")


def validate_config(config: RunConfig, *, check_tasks: bool = True) -> RunConfig:
    """Check everything that can be checked without loading a model; returns the config with its task lists
    completed (per-task fine-tunes, utility patterns) as a new object: ``config`` itself is never edited."""
    validate_stages(config.stages)
    if not config.model.name_or_path:
        raise ConfigError("model.name_or_path: missing; name the pretrained model (Hub id or local folder).")
    _check_seeds(config)
    _check_eval(config)
    features = registered_features()  # each study feature's checks (run/<feature>_steps.py), in feature order
    for feature in features:
        if feature.check is not None:
            feature.check(config)
    check_trainer_settings(config)
    if "push" in config.stages:  # a card naming a local path would be refused at the end of the study
        from lm_forget.hub.base_model import require_hub_base_model

        require_hub_base_model(config.model_path, config.push.base_model_id, config.model.gguf_file)
    if "push" in config.stages and not config.push.repo_prefix:
        raise ConfigError("push.repo_prefix: needed by stage 'push' (e.g. me/llama2-7b-forget).")
    # the schema expanded suite and patterns (run/task_lists.py) and checked tasks.task_dirs
    if config.finetune.per_task:
        _check_per_task(config)
    needed = {
        "finetune": "finetune" in config.stages and not config.finetune.per_task,
        "forget": "forget" in config.stages,
        "eval": any(s.startswith("eval_") or s == "features" for s in config.stages),
    }
    for section, required in needed.items():
        if required and not getattr(config.tasks, section):
            raise ConfigError(f"tasks.{section}: empty, but the stages need it; list task names or `suite`.")
    if check_tasks:
        from lm_forget.data.api import resolve_task

        for section in ("finetune", "forget", "eval"):
            for name in getattr(config.tasks, section):
                try:
                    resolve_task(name, task_dirs=config.task_dir_paths)
                except ConfigError as exc:
                    raise ConfigError(f"tasks.{section}: {exc}") from None
    completed: dict[str, list[str]] = {}  # the features' task lists (tasks.utility: lm-eval tasks of any kind)
    for feature in features:
        if feature.complete is not None:
            completed.update(feature.complete(config))
    if config.finetune.per_task:  # each forgotten task is fine-tuned alone: those are the fine-tune tasks
        completed["finetune"] = list(config.tasks.forget)
    config = config.model_copy(update={"tasks": config.tasks.model_copy(update=completed)})
    for feature in features:  # against the completed task lists (relearn: the unrelated pool's task)
        if feature.check_completed is not None:
            feature.check_completed(config, check_tasks)
    from lm_forget.run.reach_checks import warn_unreachable

    warn_unreachable(config)  # sizes that can never reach a verdict: warned now, before any work
    return config


def _check_eval(config: RunConfig) -> None:
    """A GGUF base is loaded (dequantized) by the hf backend only (the eval section's own checks: its validator)."""
    if config.model.gguf_file and config.eval.backend != "hf":
        raise ConfigError(f"model.gguf_file: the {config.eval.backend} backend is not given GGUF bases here (it loads "
                          "them its own way); use eval.backend: hf, which evaluates the dequantized GGUF base.")


def _check_seeds(config: RunConfig) -> None:
    """``seeds.finetune`` replaces ``finetune.seed`` (both is ambiguous) and needs the finetune stage (each axis on
    its own: ``SeedSettings``; ``forget.seed`` / ``relearn.seed``: their sections)."""
    if config.seeds.finetune is not None:
        if "seed" in config.finetune.model_fields_set:
            raise ConfigError(f"finetune.seed: {config.finetune.seed} and seeds.finetune {config.seeds.finetune} both "
                              "seed the fine-tune; keep seeds.finetune (one fine-tuned model per seed) and drop "
                              "finetune.seed.")
        if "finetune" not in config.stages:
            raise ConfigError("seeds.finetune: needs the finetune stage (each seed is its own fine-tuned model); "
                              "drop seeds.finetune or add the stage.")


def _check_per_task(config: RunConfig) -> None:
    """``finetune.per_task``: one fine-tune per forgotten task, which ``tasks.finetune`` may list but not change."""
    if "finetune" not in config.stages:
        raise ConfigError("finetune.per_task: needs the finetune stage (it fine-tunes one model per forgotten task).")
    if config.tasks.finetune and set(config.tasks.finetune) != set(config.tasks.forget):
        raise ConfigError(f"finetune.per_task: tasks.finetune {config.tasks.finetune} differs from tasks.forget "
                          f"{config.tasks.forget}; with per_task each forgotten task is fine-tuned alone, so leave "
                          "tasks.finetune empty (or equal to tasks.forget), or set per_task: false for a mixture.")
    for name in ("finetune", "forget"):
        if getattr(config, name).dynamics_every is not None:
            raise ConfigError(f"{name}.dynamics_every: not supported with finetune.per_task yet (the learning-order "
                              "analysis pairs one fine-tune run with its forget cells); remove it or use the mixture.")
