"""Checks of the training sections and analysis options against the objects they configure.

Training sections hold ``ForgetConfig`` fields under their own names; the values are checked by building the
``ForgetConfig`` at load time. Analysis options are ``AnalysisOptions`` fields, checked by building one.
"""

from __future__ import annotations

from typing import Any

from lm_forget.errors import ConfigError, did_you_mean, unknown_key_message
from lm_forget.run.schema import RunConfig, TrainSettings

#: ForgetConfig fields a study section may not set: the runner derives them from the rest of the config
RUNNER_OWNED = {"model": "model.name_or_path", "model_revision": "model.revision", "tokenizer": "model.tokenizer",
                "gguf_file": "model.gguf_file",
                "tasks": "tasks.finetune / tasks.forget", "stage": "the stage itself",
                "init_adapter": "the previous stage's output", "output_dir": "run_dir", "data": "the data: section",
                "task_dirs": "tasks.task_dirs", "resume": "the runner (it resumes by itself)",
                "overwrite": "the runner", "method": "forget.methods", "method_args": "forget.methods[].args",
                "retain": "forget.methods[].retain", "retain_size": "forget.methods[].retain_size",
                "retain_weight": "forget.methods[].retain_weight", "push_to_hub": "stage push",
                "hub_model_id": "push.repo_prefix"}
TRAIN_SECTIONS = ("finetune", "forget", "relearn")


def check_trainer_settings(config: RunConfig) -> None:
    """Every key of a used training section is a ``ForgetConfig`` field under its own name (did-you-mean),
    fields the runner sets are refused, and the values build a valid ``ForgetConfig`` — before any work starts."""
    for name in TRAIN_SECTIONS:
        section: TrainSettings = getattr(config, name)
        for key in section.model_extra or {}:
            if key in RUNNER_OWNED:
                raise ConfigError(f"{name}.{key}: set by the study runner from {RUNNER_OWNED[key]}; remove it here.")
    used = [n for n in TRAIN_SECTIONS if getattr(config, n).model_extra]  # typos fail even in unused sections
    if not used:
        return
    try:
        from lm_forget.train.config import ForgetConfig
    except ImportError:  # the trainer is optional for eval-only studies
        return
    from dataclasses import fields

    from lm_forget.train.config import refuse_token_settings

    trainer_fields = sorted(f.name for f in fields(ForgetConfig) if f.init)
    for name in used:
        section = getattr(config, name)
        known = sorted({*trainer_fields, *type(section).model_fields} - set(RUNNER_OWNED))
        extra = dict(section.model_extra or {})
        refuse_token_settings(extra, f"{name}.")
        for key in extra:
            if key not in known:
                own = ", ".join(sorted(set(type(section).model_fields) - set(RUNNER_OWNED)))
                raise ConfigError(f"config.{name}: unknown key {key!r}.{did_you_mean(key, known)} Allowed keys: the "
                                  f"study's own ({own}) and every ForgetConfig / TRL SFTConfig field (`lm-forget "
                                  "train --help` lists them).")
        # relearn's use_lora None follows forget's; quantization with full fine-tuning fails here, not after eval
        lora = section.use_lora if section.use_lora is not None else config.forget.use_lora
        try:  # the values too: a bad scheduler name or a string for a number fails now, not after fine-tuning
            checked = ForgetConfig(model="check", tasks=["check"], use_cpu=True, use_lora=lora, **extra)
        except (TypeError, ValueError, ConfigError) as exc:
            raise ConfigError(f"{name}: {exc}") from None
        if checked.quantized and config.device == "cpu":
            bits = "load_in_4bit" if checked.load_in_4bit else "load_in_8bit"
            raise ConfigError(f"{name}.{bits} needs a CUDA GPU, and this study trains on CPU (device: cpu); "
                              f"set device: cuda, or drop {name}.{bits}")


def check_eval_settings(section: Any) -> None:
    """The eval section's own checks (ValueError led by the key at fault): model placement belongs to the backend
    that loads the model, the runner owns the model's arguments, and ``hf_hub_log_args`` are lm-eval
    ``EvaluationTracker`` arguments without the token."""
    if section.backend == "hf" and "parallelize" in section.model_args:
        raise ValueError("model_args.parallelize: lm-eval ignores it for the model the runner loads once and swaps "
                         "adapters on; set eval.device_map: auto instead (the same placement)")
    runner_owned = {"pretrained", "peft", "lora_local_path"} | ({"tokenizer"} if section.backend == "hf" else set())
    owned = sorted(set(section.model_args) & runner_owned)
    if owned:
        raise ValueError(f"model_args.{owned[0]}: set by the study runner (from model: and each step's adapter); "
                         "remove it here, and name the model in model.name_or_path (its tokenizer: model.tokenizer)")
    if section.device_map is not None and section.backend != "hf":
        raise ValueError(f"device_map: {section.device_map!r} places the hf backend's model; the {section.backend} "
                         "backend places its own (vllm: eval.model_args tensor_parallel_size). Drop eval.device_map "
                         "or use eval.backend: hf")
    args = section.hf_hub_log_args
    if "token" in args:
        raise ValueError("hf_hub_log_args.token is not accepted: tokens never go in a config file (config files get "
                         "copied and shared). Set HF_TOKEN or run `hf auth login` instead")
    if args:
        import inspect

        from lm_eval.loggers import EvaluationTracker

        known = set(inspect.signature(EvaluationTracker).parameters) - {"output_path", "token"}
        for key in args:
            if key not in known:
                raise ValueError(f"hf_hub_log_args: unknown key {key!r}; lm-eval's EvaluationTracker takes "
                                 f"{', '.join(sorted(known))} (output_path is the step folder)")


def check_analysis_options(options: dict[str, Any]) -> None:
    """``analysis.options`` are ``AnalysisOptions`` fields with valid values (did-you-mean), checked now."""
    if not options:
        return
    from dataclasses import fields

    from lm_forget.analysis.options import AnalysisOptions

    known = [f.name for f in fields(AnalysisOptions) if f.init]
    for key in options:
        if key not in known:
            raise ConfigError(f"analysis.options: {unknown_key_message(str(key), known)}")
    try:
        AnalysisOptions(**options)
    except (TypeError, ValueError, ConfigError) as exc:
        raise ConfigError(f"analysis.options: {exc}") from None
