"""``train(config) -> TrainResult``: one finetune / forget / flip run on TRL's SFTTrainer + PEFT LoRA.

The steps (docs -> labels -> prompt/completion -> token ids -> SFTTrainer -> save -> card -> push) are
small functions here and in ``dataset.py``/``outputs.py``; this module only wires them together.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_forget.data.hashing import canonical_json, stable_digest
from lm_forget.errors import ConfigError, HubError, first_line

if TYPE_CHECKING:
    from lm_forget.train.config import ForgetConfig

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run produced."""

    output_dir: Path  #: folder with the adapter (or full model), tokenizer, forget_config.json, README.md
    labels_hash: str  #: SHA-256 of the (doc id, trained label) assignment
    global_step: int  #: optimizer steps taken in total (including before a resume)
    metrics: dict[str, Any] = field(default_factory=dict)  #: Trainer's train metrics (loss, runtime, ...)
    num_examples: int = 0  #: training examples actually used (all tasks)
    hub_url: str | None = None  #: commit URL when pushed
    truncated_examples: int = 0  #: examples whose prompt was cut from the left to fit the token limit


def train(
    config: ForgetConfig,
    *,
    docs: Sequence[Mapping[str, Any]] | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Run one stage as ``config`` says; ``docs`` overrides the suite's training pool (tests, custom data)."""
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer

    from lm_forget.train import outputs
    from lm_forget.train.dataset import build_examples, load_forget_docs, max_tokens, to_sft_dataset
    from lm_forget.train.labels import assign_labels, labels_hash

    config.validate()
    if config.init_adapter:
        _check_finished(Path(str(config.init_adapter)))
        _check_same_base(config)
    elif config.stage == "forget":
        logger.warning("--stage forget without --init_adapter: forgetting from the base model, not a fine-tuned one")
    docs = list(docs) if docs is not None else load_forget_docs(config)
    labels = assign_labels(docs, config.effective_label_mode, config.seed)
    method = config.forget_method
    loss_method = method is not None and not method.is_label_rule
    retain_docs = _retain_docs(config, docs) if loss_method else []
    digest = labels_hash(docs, labels)
    if loss_method:  # the method, its parameters and the retain set are part of what a resume must match
        digest = stable_digest(digest, config.method, canonical_json(config.method_args or {}),
                               config.retain_weight, *(d["id"] for d in retain_docs))
    rows = build_examples(docs, labels)
    output_dir = Path(str(config.output_dir))

    resume_from = _resume_point(config, get_last_checkpoint, digest)
    tokenizer = _load_tokenizer(config)
    model, peft_config = _load_model(config)
    dataset = to_sft_dataset(rows, tokenizer, max_tokens(config.max_length, model))

    # LoRA weights are initialised when the trainer wraps the model: seed that too (older TRL releases wrap it
    # before the Trainer seeds itself, so two runs in one process would otherwise start from different adapters)
    from transformers import set_seed

    set_seed(config.seed)
    if loss_method:
        from lm_forget.train.methods.build import build_method_trainer

        trainer = build_method_trainer(config, method, docs, retain_docs, model=model, tokenizer=tokenizer,
                                       peft_config=peft_config, callbacks=callbacks)
    else:
        trainer = SFTTrainer(
            model=model,
            args=config.to_sft_config(),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=list(callbacks) or None,
        )
    try:
        if trainer.is_world_process_zero():
            if config.overwrite and resume_from is None:
                outputs.set_aside_previous(output_dir)  # old and new files never mix, the old run is kept
            outputs.write_run_state(output_dir, config, digest, rows)
        logger.info("training %s (%s) on %d examples from %s", config.stage,
                    method.name if method else f"{config.effective_label_mode} labels", len(rows),
                    ", ".join(config.tasks))
        train_output = trainer.train(resume_from_checkpoint=resume_from)
        metrics = dict(train_output.metrics)
        trainer.save_model(str(output_dir))
        global_step = int(trainer.state.global_step)

        result = TrainResult(output_dir, digest, global_step, metrics, num_examples=len(rows),
                             truncated_examples=sum(1 for row in rows if row.get("truncated_tokens")))
        main_process = trainer.is_world_process_zero()
        if main_process:
            outputs.finish_output_dir(output_dir, config, result, rows)
    except OSError as exc:
        error = _disk_full(exc, config)
        if error is None:
            raise
        raise error from exc
    # every rank waits here until the main process has written the outputs: a rank that destroyed the process
    # group while another was still in a collective (or about to enter one) hung the other rank forever
    trainer.accelerator.wait_for_everyone()
    if hasattr(trainer, "end"):
        trainer.end()  # transformers >= 5.18: finish trackers, free the process group
    if main_process and config.push_to_hub:
        result.hub_url = _push(config, output_dir)
    return result


def _retain_docs(config: ForgetConfig, docs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The retain set when the method trains a retain term (see ``lm_forget.train.methods.retain``)."""
    from lm_forget.train.methods.retain import load_retain_docs

    method = config.forget_method
    if method is None or not method.uses_retain(config.retain_weight, bool(config.retain)):
        return []
    return load_retain_docs(config, docs)


def _resume_point(config: ForgetConfig, get_last_checkpoint: Any, digest: str) -> str | None:
    """The newest complete checkpoint to resume from, after checking the run's labels have not changed.

    An output folder with checkpoints or a finished run is never silently reused: ``--resume`` continues
    it (from its last *complete* checkpoint: ones a kill or a full disk cut short are removed),
    ``--overwrite`` replaces it (the old run is moved aside first, see ``outputs.set_aside_previous``).
    """
    from lm_forget.train.checkpoints import last_complete_checkpoint
    from lm_forget.train.outputs import previous_dir, read_run_state

    ckpt_dir = config.checkpoint_dir
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    output_dir = Path(str(config.output_dir))
    state = read_run_state(output_dir)
    finished = bool(state) and state.get("status") == "done"
    if not config.resume:
        # a run that stopped before its first checkpoint has nothing to lose: it simply starts over
        if (last or finished) and not config.overwrite:
            what = f"checkpoints ({Path(last).name})" if last else "a finished run"
            kept = previous_dir(output_dir)
            note = f" (the finished run it was replacing is kept in {kept})" if kept.exists() and not finished else ""
            raise ConfigError(
                f"{config.output_dir} already holds {what}{note}; pass --resume to continue it, --overwrite to "
                "replace it, or choose another --output_dir"
            )
        return None
    if last and state and state.get("labels_hash") not in (None, digest):
        raise ConfigError(
            f"--resume: the labels differ from the interrupted run in {config.output_dir} "
            "(different tasks, seed, stage or data); resume with the same settings or use a new --output_dir"
        )
    last = last_complete_checkpoint(ckpt_dir, get_last_checkpoint)
    if not last:
        logger.warning("--resume: no complete checkpoint in %s yet, starting from the beginning", ckpt_dir)
        return None
    logger.info("resuming from %s", last)
    return last


def _disk_full(exc: OSError, config: ForgetConfig) -> Exception | None:
    """The 'disk full' error of a run, saying what is kept and how to continue (None: another OSError)."""
    from lm_forget.io import disk_full_error
    from lm_forget.train.checkpoints import newest_complete

    last = newest_complete(config.checkpoint_dir)
    kept = f"the last complete checkpoint, {last.name}, is kept" if last else "no checkpoint was complete yet"
    return disk_full_error(exc, config.output_dir or "", (
        f"{kept}. Free space on that disk (or move {config.output_dir} to a disk with room), then rerun the same "
        "command with --resume to continue; the checkpoint the full disk cut short is discarded."
    ))


def _check_finished(init: Path) -> None:
    """Refuse to continue from a run that was interrupted (its forget_config.json is not ``done``)."""
    from lm_forget.train.outputs import read_run_state

    state = read_run_state(init) if init.is_dir() else None
    if state and state.get("status") != "done":
        raise ConfigError(
            f"--init_adapter {init} is an unfinished run (status {state.get('status')!r}: it was interrupted); "
            f"finish it first by rerunning its command with --resume (--output_dir {init})"
        )


def _load_tokenizer(config: ForgetConfig) -> Any:
    from lm_forget.modeling import ModelRef, load_tokenizer

    return load_tokenizer(ModelRef.from_forget_config(config), trust_remote_code=config.trust_remote_code)


def _load_model(config: ForgetConfig) -> tuple[Any, Any]:
    """(model, peft_config for SFTTrainer or None): base + new LoRA, base + previous adapter, or full weights.

    With ``load_in_4bit`` / ``load_in_8bit`` the base loads quantized (QLoRA) on this process's GPU.
    """
    from lm_forget.modeling import ModelRef, load_model
    from lm_forget.train import peft_setup

    init_kwargs = dict(config.model_init_kwargs or {})
    dtype = init_kwargs.pop("dtype", None) or config.model_dtype  # float32 on CPU, the checkpoint's own elsewhere
    if config.quantized:  # unquantized modules in the compute dtype, as TRL's sft script loads them
        dtype = peft_setup.compute_dtype(config)
        init_kwargs = peft_setup.quantized_init_kwargs(config, init_kwargs)
    ref = ModelRef.from_forget_config(config)
    if not config.use_lora and config.init_adapter:  # full weights of the previous stage
        ref = ModelRef(str(config.init_adapter))
    elif config.use_lora and config.init_adapter:
        # Continue the fine-tune adapter: the forgotten adapter still loads on the base model alone.
        # Its own r/alpha/targets apply; the lora_* settings of this run are not used.
        logger.info("continuing adapter %s (its LoRA shape applies)", config.init_adapter)
        _warn_unused_lora_settings(config)
        ref = ref.with_adapter(str(config.init_adapter))
    model = load_model(ref, dtype=dtype, trainable=True, trust_remote_code=config.trust_remote_code,
                       adapter_flag="--init_adapter", **init_kwargs)
    if not config.use_lora or config.init_adapter:
        return model, None
    return model, peft_setup.lora_config(config, model)


def _warn_unused_lora_settings(config: ForgetConfig) -> None:
    """A continued adapter keeps its own LoRA variant: say which of this run's settings do not apply."""
    from lm_forget.train.peft_settings import KEY_NEUTRAL_DEFAULTS

    unused = [name for name in ("lora_modules_to_save", "use_rslora", "use_dora")
              if getattr(config, name) != KEY_NEUTRAL_DEFAULTS[name]]
    if unused:
        logger.warning("--init_adapter %s: its own LoRA settings apply; %s of this run are not used",
                       config.init_adapter, ", ".join(unused))


def _check_same_base(config: ForgetConfig) -> None:
    """Refuse an adapter (or full model) trained from another base model than ``--model``."""
    from lm_forget.train.outputs import read_run_state

    init = str(config.init_adapter)
    recorded: str | None = None
    state = read_run_state(Path(init)) if Path(init).is_dir() else None
    if state:
        recorded = state.get("model")
    elif config.use_lora:
        from peft import PeftConfig

        try:
            recorded = PeftConfig.from_pretrained(init).base_model_name_or_path
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"--init_adapter {init!r} is not a PEFT adapter ({first_line(exc)}); pass the output folder "
                "of the fine-tune stage"
            ) from exc
    if state and (state.get("gguf_file") or None) != config.gguf_file:
        raise ConfigError(
            f"--init_adapter {init!r} was trained on gguf_file {state.get('gguf_file')!r}, not --gguf_file "
            f"{config.gguf_file!r}; pass the same --model and --gguf_file as the fine-tune stage"
        )
    if recorded is not None and not _same_model(recorded, str(config.model)):
        raise ConfigError(
            f"--init_adapter {init!r} was trained on base model {recorded!r}, not --model {config.model!r}; "
            "pass the same --model as the fine-tune stage"
        )


def _same_model(a: str, b: str) -> bool:
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return a.rstrip("/") == b.rstrip("/")


def _push(config: ForgetConfig, output_dir: Path) -> str:
    from lm_forget.hub.push import push_folder

    try:
        return push_folder(
            output_dir,
            str(config.hub_model_id),
            private=bool(config.hub_private_repo),
            revision=config.hub_revision,
            base_model_id=config.base_model_id,
            commit_message=f"lm-forget {config.stage} on {', '.join(config.tasks)}",
        )
    except HubError as exc:
        raise HubError(
            f"{exc} The trained adapter is kept in {output_dir}; push it later with "
            f"`lm-forget push {output_dir} {config.hub_model_id}`."
        ) from exc
