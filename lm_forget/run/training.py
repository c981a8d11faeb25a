"""Train steps: build a ``ForgetConfig`` from the run config and call the trainer; resume from its checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lm_forget.formats import CHECKPOINTS_DIR
from lm_forget.run.config import RunConfig, TrainSettings
from lm_forget.train.checkpoints import last_complete_checkpoint, newest_complete

log = logging.getLogger(__name__)


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` the trainer left in ``output_dir`` (None: nothing to resume)."""
    return newest_complete(output_dir / CHECKPOINTS_DIR)


def drop_incomplete_checkpoints(output_dir: Path) -> Path | None:
    """Delete the checkpoints newer than the last complete one: a kill interrupted them mid-write (the trainer
    would otherwise resume from the newest). Returns that last complete checkpoint (None: none)."""
    last = last_complete_checkpoint(output_dir / CHECKPOINTS_DIR)
    return Path(last) if last else None


def forget_config_kwargs(config: RunConfig, section: TrainSettings, *, stage: str, tasks: list[str],
                         num_examples: int | None, seed: int, init: str | None, output_dir: Path,
                         resume: bool, method: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``ForgetConfig`` fields of one train step: the section's own (same names), then what the runner sets.

    ``method``: a ``forget.methods`` entry's step settings (``MethodSpec.step_settings``): its name, args,
    retain settings and its own learning rate / epochs / step budget replace the section's.
    """
    kwargs: dict[str, Any] = dict(section.trainer_settings)
    kwargs.update(
        model=config.model_path,
        model_revision=config.model.revision,
        tokenizer=config.model.tokenizer,
        gguf_file=config.model.gguf_file,
        tasks=list(tasks),
        stage=stage,
        init_adapter=init,
        num_examples=int(num_examples or config.data.train_size),
        data=config.data.to_dict(),
        task_dirs=[str(p) for p in config.task_dir_paths],
        seed=seed,
        output_dir=str(output_dir),
        resume=resume,
        # the step folder belongs to the runner: what an attempt left there without a checkpoint (even a
        # finished run whose done.json was never written) is redone from scratch
        overwrite=not resume,
    )
    kwargs.setdefault("disable_tqdm", False)
    if config.model.dtype != "auto":  # "auto": ForgetConfig.model_dtype decides (float32 on CPU)
        kwargs["model_init_kwargs"] = {**(kwargs.get("model_init_kwargs") or {}), "dtype": config.model.dtype}
    if config.device == "cpu":
        # bf16, activation checkpointing: ForgetConfig resolves them for the device (lm_forget.train.device)
        kwargs["use_cpu"] = True
    if method:
        kwargs.update(_method_kwargs(method))
    return kwargs


_METHOD_FIELDS = {"name": "method", "args": "method_args", "retain": "retain", "retain_size": "retain_size",
                  "retain_weight": "retain_weight", "learning_rate": "learning_rate",
                  "num_train_epochs": "num_train_epochs", "max_steps": "max_steps"}


def _method_kwargs(method: dict[str, Any]) -> dict[str, Any]:
    """``ForgetConfig`` fields of one method entry (``MethodSpec.step_settings``)."""
    return {_METHOD_FIELDS[k]: v for k, v in method.items() if k in _METHOD_FIELDS}


def run_train(config: RunConfig, section: TrainSettings, *, stage: str, tasks: list[str], num_examples: int | None,
              seed: int, init: str | None, output_dir: Path, docs: list[dict[str, Any]] | None = None,
              lora: bool | None = None, method: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train through ``lm_forget.train.api.train``; an interrupted run continues from its last checkpoint.

    ``docs`` replaces the first ``num_examples`` docs of the pool (in-process only); ``lora`` overrides
    ``section.use_lora`` (relearn follows the forget stage's choice); ``method`` is one ``forget.methods`` entry.
    """
    checkpoint = drop_incomplete_checkpoints(output_dir)  # one scan: drops the cut-off ones, finds the last
    if checkpoint is not None:
        log.info("resuming %s from %s", output_dir, checkpoint.name)
    kwargs = forget_config_kwargs(config, section, stage=stage, tasks=tasks, num_examples=num_examples, seed=seed,
                                  init=init, output_dir=output_dir, resume=checkpoint is not None, method=method)
    if lora is not None:
        kwargs["use_lora"] = lora
    record: dict[str, Any] = {"resumed_from": checkpoint.name if checkpoint else None}
    if section.launcher:
        from lm_forget.run.launchers import resolve_launcher

        launcher = resolve_launcher(section.launcher)
        return {**record, **launch_train(launcher, kwargs, output_dir, threads=config.threads)}
    from lm_forget.train.api import train
    from lm_forget.train.config import ForgetConfig

    forget_config = ForgetConfig(**kwargs)
    callbacks = dynamics_callbacks(config, section, forget_config, stage=stage)
    result = train(forget_config, callbacks=callbacks, docs=docs)
    for name in ("output_dir", "global_step", "labels_hash", "num_examples"):
        value = getattr(result, name, None)
        if value is not None:
            record[name] = str(value) if isinstance(value, Path) else value
    loss = (getattr(result, "metrics", None) or {}).get("train_loss")
    if loss is not None:
        record["train_loss"] = float(loss)
    return record


def launch_train(launcher: list[str], kwargs: dict[str, Any], output_dir: Path, *,
                 threads: int | None = None) -> dict[str, Any]:
    """Train in a subprocess under ``launcher`` (``accelerate launch ...``), reading back what it recorded.

    The trainer's own entry point does the work (``python -m lm_forget.train --config``), so multi-GPU and
    DeepSpeed come from accelerate's config, not from code here.
    """
    import json
    import os
    import subprocess

    import yaml

    from lm_forget.errors import ConfigError

    output_dir.mkdir(parents=True, exist_ok=True)
    config_path = output_dir.parent / "train_config.yaml"
    config_path.write_text(yaml.safe_dump(kwargs, sort_keys=True), encoding="utf-8")
    command = [*launcher, "-m", "lm_forget.train", "--config", str(config_path)]
    log.info("launching %s", " ".join(command))
    try:
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        subprocess.run(command, check=True, env=env)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ConfigError(f"training launcher failed ({exc}); command: {' '.join(command)}") from None
    state_path = output_dir / "forget_config.json"
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
    if state.get("status") != "done":
        raise ConfigError(f"{' '.join(command)} ended without a finished run in {output_dir}.")
    return {"output_dir": str(output_dir), "global_step": state.get("global_step"),
            "labels_hash": state.get("labels_hash"), "launcher": " ".join(launcher)}


def dynamics_callbacks(config: RunConfig, section: TrainSettings, forget_config: Any, *, stage: str) -> list[Any]:
    """The ``DynamicsCallback`` of a train step when ``dynamics_every`` is set: it scores the forget pool.

    Fine-tune: each forgotten task's largest forget set; forget: the cell's own trained docs. Doc ids are
    the same in both, so learned-at (fine-tune) and forgotten-at (forget) join per doc.
    """
    if not section.dynamics_every:
        return []
    from lm_forget.data.api import load_docs
    from lm_forget.train.dataset import load_forget_docs
    from lm_forget.train.dynamics import DynamicsCallback, sample_pool

    if stage == "finetune":
        n = max(int(x or config.data.train_size) for x in config.forget_sizes)
        docs = [d for task in config.tasks.forget
                for d in load_docs(task, "train", task_dirs=config.task_dir_paths, data=config.data)[:n]]
    else:
        docs = load_forget_docs(forget_config)
    scoring = config.eval.batch_size
    batch_size = scoring if isinstance(scoring, int) else section.per_device_train_batch_size
    return [DynamicsCallback(sample_pool(docs, section.dynamics_limit), None,
                             phase="finetune" if stage == "finetune" else "forget",
                             every=section.dynamics_every, output_dir=forget_config.output_dir,
                             batch_size=batch_size)]
