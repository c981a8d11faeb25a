"""Cross-field checks of a run config: everything that can be checked before any work starts.

The schema (``run/schema.py``) checks each value's type; this module checks what needs several values or a
registry: stage order, task names and patterns, the forgetting-method and label-mode registries, trainer
settings against ``ForgetConfig``, analysis options against ``AnalysisOptions``, relearn sizes, the Hub.
"""

from __future__ import annotations

from typing import Any

from lm_forget.errors import ConfigError, did_you_mean
from lm_forget.run.schema import STAGES, ForgetSettings, RunConfig
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


def label_rules() -> list[str]:
    """The registry's label-rule methods (``random_labels``, ``flipped_labels``): what ``forget.method`` takes."""
    from lm_forget.train.methods import get_method, method_names

    return [m for m in method_names() if get_method(m).is_label_rule]


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


def check_forget_methods(forget: ForgetSettings) -> None:
    """``forget.method`` and every ``forget.methods`` entry against the method registry, parameters too."""
    if not forget.methods:
        rules = label_rules()
        if forget.method not in rules:
            from lm_forget.train.methods import method_names

            if forget.method in method_names():
                raise ConfigError(f"forget.method: {forget.method!r} is a loss method; list it in forget.methods "
                                  f"(e.g. methods: [{forget.method}]): each cell then carries its name.")
            raise ConfigError(f"forget.method: {forget.method!r}.{did_you_mean(forget.method, rules)} Use one of "
                              f"{', '.join(rules)}, or list other forgetting methods in forget.methods.")
        return
    from lm_forget.train.methods import get_method

    if forget.method != "random_labels":
        raise ConfigError(f"forget.method: {forget.method!r} applies only without forget.methods; list it among the "
                          "methods instead and drop forget.method.")
    specs = forget.method_specs  # names already registered ones: MethodSpec refuses unknowns
    for i, spec in enumerate(specs):
        where = f"forget.methods[{i}]"
        if not spec.name:
            raise ConfigError(f"{where}: no name; give a method name, e.g. {{name: npo, args: {{beta: 0.1}}}}.")
        method = get_method(spec.name)
        try:
            method.parse_params(spec.args)
        except ConfigError as exc:
            raise ConfigError(f"{where}.args: {exc}") from None
        if spec.retain_size is not None and spec.retain_size < 1:
            raise ConfigError(f"{where}.retain_size: {spec.retain_size}; give a positive number of docs.")
    ids = [s.id for s in specs]
    for spec_id in ids:
        if ids.count(spec_id) > 1:
            raise ConfigError(f"forget.methods: {spec_id!r} is listed twice; give each entry its own `label` "
                              "(e.g. {name: npo, label: npo_b05, args: {beta: 0.5}}).")


def _check_hub_log_args(args: dict[str, Any]) -> None:
    """``eval.hf_hub_log_args`` must be lm-eval ``EvaluationTracker`` arguments, and never carry the token."""
    if "token" in args:
        raise ConfigError("eval.hf_hub_log_args.token is not accepted: tokens never go in a config file "
                          "(config files get copied and shared). Set HF_TOKEN or run `hf auth login` instead.")
    if not args:
        return
    import inspect

    from lm_eval.loggers import EvaluationTracker

    known = set(inspect.signature(EvaluationTracker).parameters) - {"output_path", "token"}
    for key in args:
        if key not in known:
            raise ConfigError(f"eval.hf_hub_log_args: unknown key {key!r}; lm-eval's EvaluationTracker takes "
                              f"{', '.join(sorted(known))} (output_path is the step folder).")


def validate_config(config: RunConfig, *, check_tasks: bool = True) -> RunConfig:
    """Check everything that can be checked without loading a model; returns the config with its task lists
    completed (per-task fine-tunes, utility patterns) as a new object: ``config`` itself is never edited."""
    validate_stages(config.stages)
    if not config.model.name_or_path:
        raise ConfigError("model.name_or_path: missing; name the pretrained model (Hub id or local folder).")
    _check_seeds(config)
    _check_eval(config)
    check_forget_methods(config.forget)
    for name in ("finetune", "forget"):
        section = getattr(config, name)
        if section.dynamics_every is not None and (section.dynamics_every <= 0 or section.launcher):
            raise ConfigError(f"{name}.dynamics_every: {section.dynamics_every!r}; give a positive number of steps "
                              "(or a fraction of an epoch < 1), with in-process training (no launcher).")
    features = registered_features()  # each study feature's checks (run/<feature>_steps.py), in feature order
    for feature in features:
        if feature.check is not None:
            feature.check(config)
    check_trainer_settings(config)
    _check_hub_log_args(config.eval.hf_hub_log_args)
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
    """Model placement belongs to the backend that loads the model."""
    if config.eval.backend == "hf" and "parallelize" in config.eval.model_args:
        raise ConfigError("eval.model_args.parallelize: lm-eval ignores it for the model the runner loads once and "
                          "swaps adapters on; set eval.device_map: auto instead (the same placement).")
    runner_owned = {"pretrained", "peft", "lora_local_path"} | ({"tokenizer"} if config.eval.backend == "hf" else set())
    owned = sorted(set(config.eval.model_args) & runner_owned)
    if owned:
        raise ConfigError(f"eval.model_args.{owned[0]}: set by the study runner (from model: and each step's "
                          "adapter); remove it here, and name the model in model.name_or_path (its tokenizer: "
                          "model.tokenizer).")
    if config.model.gguf_file and config.eval.backend != "hf":
        raise ConfigError(f"model.gguf_file: the {config.eval.backend} backend is not given GGUF bases here (it loads "
                          "them its own way); use eval.backend: hf, which evaluates the dequantized GGUF base.")
    if config.eval.device_map is not None and config.eval.backend != "hf":
        raise ConfigError(f"eval.device_map: {config.eval.device_map!r} places the hf backend's model; the "
                          f"{config.eval.backend} backend places its own (vllm: eval.model_args "
                          "tensor_parallel_size). Drop eval.device_map or use eval.backend: hf.")


def _check_seeds(config: RunConfig) -> None:
    """``forget.seed`` / ``relearn.seed`` refused (``seeds.forget`` seeds them); ``seeds.finetune`` replaces
    ``finetune.seed`` (both is ambiguous). Each axis on its own (non-empty, no duplicates): ``SeedSettings``."""
    for name in ("forget", "relearn"):  # the runner seeds these stages from seeds.forget, never from the section
        seed = (getattr(config, name).model_extra or {}).get("seed")
        if seed is not None:
            raise ConfigError(f"{name}.seed: {seed} would be ignored: the {name} stage is seeded by the study's "
                              f"forget seeds (each seed one replicate); write seeds: [{seed}] (or seeds.forget: "
                              f"[{seed}]) and drop {name}.seed.")
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
