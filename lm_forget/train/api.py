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

from lm_forget.errors import ConfigError, HubError

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
    from lm_forget.train.dataset import build_examples, load_forget_docs, to_sft_dataset
    from lm_forget.train.labels import assign_labels, labels_hash

    config.validate()
    if config.init_adapter:
        _check_same_base(config)
    elif config.stage != "finetune":
        logger.warning("--stage %s without --init_adapter: training from the base model, not a fine-tuned one",
                       config.stage)
    docs = list(docs) if docs is not None else load_forget_docs(config)
    labels = assign_labels(docs, config.effective_label_mode, config.seed)
    digest = labels_hash(docs, labels)
    rows = build_examples(docs, labels)
    output_dir = Path(str(config.output_dir))

    resume_from = _resume_point(config, get_last_checkpoint, digest)
    tokenizer = _load_tokenizer(config)
    model, peft_config = _load_model(config)
    dataset = to_sft_dataset(rows, tokenizer)

    trainer = SFTTrainer(
        model=model,
        args=config.to_sft_config(),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks) or None,
    )
    if trainer.is_world_process_zero():
        outputs.write_run_state(output_dir, config, digest, rows)
    logger.info("training %s (%s labels) on %d examples from %s", config.stage, config.effective_label_mode,
                len(rows), ", ".join(config.tasks))
    train_output = trainer.train(resume_from_checkpoint=resume_from)
    metrics = dict(train_output.metrics)
    trainer.save_model(str(output_dir))
    global_step = int(trainer.state.global_step)

    result = TrainResult(output_dir, digest, global_step, metrics, num_examples=len(rows))
    main_process = trainer.is_world_process_zero()
    if main_process:
        outputs.finish_output_dir(output_dir, config, result, rows)
    if hasattr(trainer, "end"):
        trainer.end()  # transformers >= 5.18: finish trackers, free the process group
    if main_process and config.push_to_hub:
        result.hub_url = _push(config, output_dir)
    return result


def _resume_point(config: ForgetConfig, get_last_checkpoint: Any, digest: str) -> str | None:
    """The checkpoint to resume from, after checking the run's labels have not changed.

    An output folder with checkpoints or a finished run is never silently reused: ``--resume`` continues
    it, ``--overwrite`` replaces it.
    """
    import shutil

    from lm_forget.train.outputs import read_run_state

    ckpt_dir = config.checkpoint_dir
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    state = read_run_state(Path(str(config.output_dir)))
    finished = bool(state) and state.get("status") == "done"
    if not config.resume:
        # a run that stopped before its first checkpoint has nothing to lose: it simply starts over
        if (last or finished) and not config.overwrite:
            what = f"checkpoints ({Path(last).name})" if last else "a finished run"
            raise ConfigError(
                f"{config.output_dir} already holds {what}; pass --resume to continue it, --overwrite to replace "
                "it, or choose another --output_dir"
            )
        if ckpt_dir.is_dir():
            shutil.rmtree(ckpt_dir, ignore_errors=True)  # --overwrite: never mix checkpoints of two runs
        return None
    if not last:
        logger.warning("--resume: no checkpoint in %s yet, starting from the beginning", ckpt_dir)
        return None
    if state and state.get("labels_hash") not in (None, digest):
        raise ConfigError(
            f"--resume: the labels differ from the interrupted run in {config.output_dir} "
            "(different tasks, seed, stage or data); resume with the same settings or use a new --output_dir"
        )
    logger.info("resuming from %s", last)
    return last


def _load_tokenizer(config: ForgetConfig) -> Any:
    from transformers import AutoTokenizer

    model = str(config.model)
    if model.startswith(("/", ".", "~")) and not Path(model).expanduser().is_dir():
        raise ConfigError(f"base model folder {model} does not exist; pass an existing folder or a Hub id to --model")
    try:
        return AutoTokenizer.from_pretrained(config.model, trust_remote_code=config.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load the tokenizer of base model {config.model!r}: {_first_line(exc)}. "
            "Pass a Hub id or a local folder with config.json and tokenizer files to --model"
        ) from exc


def _load_model(config: ForgetConfig) -> tuple[Any, Any]:
    """(model, peft_config for SFTTrainer or None): base + new LoRA, base + previous adapter, or full weights."""
    from transformers import AutoModelForCausalLM

    init_kwargs = dict(config.model_init_kwargs or {})
    init_kwargs.setdefault("dtype", config.model_dtype)  # float32 on CPU, the checkpoint's own elsewhere
    full_from_previous = not config.use_lora and config.init_adapter
    source = config.init_adapter if full_from_previous else config.model
    try:
        model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=config.trust_remote_code,
                                                     **init_kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load model {source!r}: {_first_line(exc)}. Pass a Hub id or a local model folder"
        ) from exc
    if not config.use_lora:
        return model, None
    if config.init_adapter:
        from peft import PeftModel

        # Continue the fine-tune adapter: the forgotten adapter still loads on the base model alone.
        # Its own r/alpha/targets apply; the lora_* settings of this run are not used.
        logger.info("continuing adapter %s (its LoRA shape applies)", config.init_adapter)
        return PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True), None
    return model, _lora_config(config, model)


def _lora_config(config: ForgetConfig, model: Any) -> Any:
    from peft import LoraConfig

    targets: str | list[str] = list(config.lora_target_modules)
    if targets == ["all-linear"]:
        targets = "all-linear"
    else:
        _check_target_modules(model, targets)
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def _check_target_modules(model: Any, targets: list[str]) -> None:
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        import torch

        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ConfigError(
            f"--lora_target_modules {missing} not found in {model.__class__.__name__}; "
            f"its linear layers are {linear} (or use all-linear)"
        )


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
                f"--init_adapter {init!r} is not a PEFT adapter ({_first_line(exc)}); pass the output folder "
                "of the fine-tune stage"
            ) from exc
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
            str(config.push_to_hub),
            private=bool(config.hub_private_repo),
            revision=config.hub_revision,
            commit_message=f"lm-forget {config.stage} on {', '.join(config.tasks)}",
        )
    except HubError as exc:
        raise HubError(
            f"{exc} The trained adapter is kept in {output_dir}; push it later with "
            f"`lm-forget push {output_dir} {config.push_to_hub}`."
        ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
