"""``ForgetConfig``: every setting of a finetune / forget / flip run, on top of TRL's ``SFTConfig``.

Read it the way TRL's own scripts do (``TrlParser``): ``--config file.yaml`` sets defaults, CLI flags
override them, and every ``SFTConfig``/``TrainingArguments`` field is available too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from trl import SFTConfig

from lm_forget.errors import ConfigError
from lm_forget.formats import CHECKPOINTS_DIR
from lm_forget.train.labels import STAGES
from lm_forget.train.numbers import check_numbers
from lm_forget.train.peft_settings import PeftSettings, unique_names

if TYPE_CHECKING:
    from lm_forget.data.config import DataConfig
    from lm_forget.train.methods import Method

#: Token-bearing TrainingArguments fields: refused, since the Trainer pickles its arguments (training_args.bin)
TOKEN_FIELDS = ("hub_token", "push_to_hub_token")


def refuse_token_settings(settings: dict[str, Any], where: str = "--") -> None:
    """Refuse a token passed as a setting, naming the setting but never echoing its value."""
    for name in TOKEN_FIELDS:
        if settings.get(name):
            raise ConfigError(
                f"{where}{name} is not accepted: a token given as a setting ends up in shell history, "
                "training_args.bin and logs. Set HF_TOKEN or run `hf auth login` instead (nothing was written)."
            )


@dataclass
class ForgetConfig(SFTConfig, PeftSettings):
    r"""Configuration of one lm-forget training run (all ``SFTConfig`` fields are available as well).

    The LoRA and quantization fields (``use_lora``, ``lora_*``, ``use_rslora``, ``use_dora``, ``load_in_4bit``,
    ``load_in_8bit``, ``bnb_4bit_quant_type``, ``use_bnb_nested_quant``) are documented on
    ``lm_forget.train.peft_settings.PeftSettings``; they carry TRL ``ModelConfig``'s names.

    Parameters:
        model (`str`):
            Base model: Hub id or local folder (e.g. ``meta-llama/Llama-2-7b-hf``). Required.
        tasks (`list[str]`):
            Forget-suite tasks to train on (``forget_boolq``; several = a mixture). Commas also split.
        stage (`str`, defaults to ``"finetune"``):
            The protocol stage: ``finetune`` (true labels), ``forget`` (the forgetting ``method``), ``relearn``
            (true labels again, usually from a forgotten model's ``init_adapter``).
        method (`str`, *optional*):
            Forgetting method of stage ``forget`` (``lm_forget.train.methods``): ``random_labels`` (the paper's,
            the default), ``flipped_labels``, ``uniform``, ``grad_ascent``, ``grad_diff``, ``npo``, ``simnpo``,
            ``rmu``. Only with stage ``forget``. See docs/methods.md.
        method_args (`dict` or JSON `str`, *optional*):
            The method's own hyper-parameters, e.g. ``{"beta": 0.1}`` for npo.
        retain (`list[str]`):
            Retain-set tasks (methods with a retain term); default: the other tasks ``init_adapter`` was
            fine-tuned on.
        retain_size (`int`, *optional*):
            Retain docs in all (default: as many as forget docs).
        retain_weight (`float`, *optional*):
            Weight of the retain term (default: the method's; rmu's alpha).
        init_adapter (`str`, *optional*):
            Output of the previous stage (folder or Hub id). With LoRA its adapter is trained further, so the
            result still loads on the base model alone; with ``--no-lora`` the full weights are loaded from it.
        num_examples (`int`, defaults to 1000):
            Training examples per task: the first N docs of the suite's hashed training pool.
        data (`dict` or JSON `str`, *optional*):
            How the suite's docs are sampled, as ``lm_forget.data.DataConfig`` fields, e.g.
            ``{"seed": 0, "train_size": 1000, "eval_size": 1000}`` (the run config's ``data:`` section).
            ``seed`` is the data seed: keep it fixed across forget seeds so every seed forgets the same
            examples (the training ``seed`` varies the random labels). Default: seed 0 and a training pool
            of ``max(1000, num_examples)`` docs (pools nest: the first N docs never depend on the size).
        model_revision (`str`, *optional*):
            Hub revision (branch, tag or commit) of ``model`` (TRL's ``ModelConfig`` name); the tokenizer
            loads at the same revision unless ``tokenizer`` names another one.
        tokenizer (`str`, *optional*):
            Tokenizer id or folder when it differs from ``model``'s own.
        gguf_file (`str`, *optional*):
            A GGUF file in ``model`` (folder or Hub repo) to load instead of safetensors weights: transformers
            dequantizes it to float (model and tokenizer, ``from_pretrained(model, gguf_file=...)``). LoRA trains
            on the dequantized base; full fine-tuning saves a plain safetensors checkpoint. The card's
            ``base_model`` comes from the file's ``general.*`` metadata or ``base_model_id``.
        task_dirs (`list[str]`):
            Extra folders with task YAMLs (derived or generated tasks), as for ``lm_eval --include_path``.
        push_to_hub (`bool`, defaults to False), hub_model_id (`str`):
            TrainingArguments' own pair: push the adapter and its model card to ``hub_model_id``
            (``me/llama2-7b-forget-boolq``) after training. Visibility and branch come from
            ``hub_private_repo`` and ``hub_revision``. lm-forget pushes itself (its card, no pickled
            checkpoints), so the Trainer's own push stays off.
        base_model_id (`str`, *optional*):
            Hub id of ``model`` when that is a local folder which does not record one (a Hugging Face cache
            snapshot or a ``config.json`` ``_name_or_path`` does): the card's ``base_model`` must be a Hub id.
        resume (`bool`, defaults to False):
            Continue an interrupted run from the last checkpoint in ``output_dir/checkpoints``.
        overwrite (`bool`, defaults to False):
            Replace a run already in ``output_dir`` (otherwise such a folder is refused).
        seed (`int`, defaults to 0):
            Seeds the random labels and the trainer (initialization, data order, dropout).
    """

    model: str | None = field(default=None, metadata={"help": "Base model: Hub id or local folder (required)."})
    tasks: list[str] = field(
        default_factory=list, metadata={"help": "Forget-suite tasks to train on; several form a mixture."}
    )
    stage: Literal["finetune", "forget", "relearn"] = field(
        default="finetune",
        metadata={"help": "finetune = true labels; forget = the forgetting --method; relearn = true labels again."},
    )
    method: str | None = field(
        default=None, metadata={"help": "Forgetting method of --stage forget (default: random_labels, the paper's); "
                                        "see docs/methods.md."}
    )
    method_args: dict[str, Any] | str | None = field(
        default=None, metadata={"help": "The method's hyper-parameters as a JSON object, e.g. '{\"beta\": 0.1}'."}
    )
    retain: list[str] = field(
        default_factory=list, metadata={"help": "Retain-set tasks (default: the other fine-tuned tasks)."}
    )
    retain_size: int | None = field(default=None, metadata={"help": "Retain docs (default: as many as forget docs)."})
    retain_weight: float | None = field(default=None, metadata={"help": "Retain-term weight (default: the method's)."})
    init_adapter: str | None = field(
        default=None, metadata={"help": "Previous stage's output (adapter or full model) to start from."}
    )
    num_examples: int = field(default=1000, metadata={"help": "Training examples per task (paper: 1000 and 100)."})
    data: dict[str, Any] | str | None = field(
        default=None,
        metadata={"help": 'Doc sampling (DataConfig) as JSON, e.g. \'{"seed": 0, "train_size": 1000}\'.'},
    )
    model_revision: str | None = field(default=None, metadata={"help": "Hub revision of --model."})
    tokenizer: str | None = field(default=None, metadata={"help": "Tokenizer id or folder (default: the model's)."})
    gguf_file: str | None = field(
        default=None, metadata={"help": "GGUF file in --model to load (dequantized to float; model and tokenizer)."}
    )
    task_dirs: list[str] = field(default_factory=list, metadata={"help": "Extra folders of task YAMLs."})
    base_model_id: str | None = field(
        default=None, metadata={"help": "Hub id of --model when it is a local folder (the card's base_model)."}
    )
    resume: bool = field(default=False, metadata={"help": "Continue from the last checkpoint in output_dir."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a run already in output_dir."})

    # SFTConfig/TrainingArguments fields whose defaults differ for forgetting runs
    seed: int = field(default=0, metadata={"help": "Seeds the random labels and the trainer."})
    data_seed: int | None = field(default=None, metadata={"help": (
        "Refused: transformers' batch-sampler seed follows --seed here, so that data_seed has one meaning in "
        "lm-forget, the docs' sampling seed: --data '{\"seed\": N}' (data.seed in a run config, data_seed in "
        "lm-eval metadata).")})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (paper's forget pass: 1e-4)."})
    output_dir: str | None = field(default="out/forget", metadata={"help": "Where the adapter and card go."})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "Trackers to log to."})
    save_strategy: str = field(default="steps", metadata={"help": "Checkpoint strategy (for --resume)."})
    save_steps: float = field(default=50, metadata={"help": "Checkpoint every N steps."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept."})
    # TRL defaults the deprecated alias to True, which warns on every parse; use the new name instead
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "Deprecated alias of --activation_checkpointing."}
    )
    activation_checkpointing: bool | None = field(
        default=None,
        metadata={"help": "Recompute activations in the backward pass (saves memory on 7B). Default: on CUDA only."},
    )
    # TRL turns bf16 on everywhere, which fails (or is emulated, 7x slower) on CPU; lm_forget.train.device decides
    bf16: bool | None = field(  # type: ignore[assignment]
        default=None,
        metadata={"help": "bf16 mixed precision. Default: where the accelerator supports it (never on CPU)."},
    )

    def __post_init__(self) -> None:
        self.tasks = unique_names(self.tasks, "--tasks")
        self.check_peft_settings()
        if self.data_seed is not None:
            raise ConfigError(f"--data_seed {self.data_seed}: in lm-forget data_seed is the docs' sampling seed, "
                              f"passed as --data '{{\"seed\": {self.data_seed}}}'; transformers' batch-sampler "
                              "seed follows --seed")
        if self.stage not in STAGES:
            raise ConfigError(f"unknown --stage {self.stage!r}; use one of {', '.join(STAGES)} (the forgetting "
                              "method is --method, e.g. --stage forget --method flipped_labels)")
        if self.num_examples < 1:
            raise ConfigError(f"--num_examples must be at least 1, got {self.num_examples}")
        check_numbers(self)
        refuse_token_settings(vars(self))
        self.data = self._resolve_data().to_dict()
        self._resolve_revision()
        if self.gguf_file and self.quantized:
            raise ConfigError("--gguf_file loads the base dequantized to float; --load_in_4bit/--load_in_8bit would "
                              "quantize it again: drop one of them (QLoRA needs a safetensors base)")
        if self.base_model_id:
            from lm_forget.hub.base_model import hub_base_model

            hub_base_model(None, self.base_model_id)  # spelled like a Hub id, or a clear error now
        self.retain = unique_names(self.retain, "--retain")
        if self.method is not None:
            if self.stage != "forget":
                raise ConfigError(f"--method {self.method} forgets; use it with --stage forget, not {self.stage}")
            method = self.forget_method
            assert method is not None
            method.parse_params(self.method_args)  # unknown or bad hyper-parameters fail at parse time
        if self.retain_size is not None and self.retain_size < 1:
            raise ConfigError(f"--retain_size must be at least 1, got {self.retain_size}")
        self._resolve_precision()
        super().__post_init__()

    def _resolve_data(self) -> DataConfig:
        """``data`` as a checked ``DataConfig`` (JSON from the CLI, a mapping from YAML or Python)."""
        from lm_forget.data.config import DataConfig

        data = self.data
        if isinstance(data, str):
            from lm_forget.limits import load_json

            try:
                data = load_json(data, "--data") if data.strip() else {}
            except ValueError as exc:
                raise ConfigError(f"--data: not a JSON object ({exc}); e.g. '{{\"seed\": 3}}'") from None
        if data is None:
            return DataConfig(train_size=max(1000, self.num_examples))
        if not isinstance(data, dict):
            raise ConfigError(f"--data: expected a mapping of DataConfig fields, got {data!r}")
        config = DataConfig.from_mapping(data, where="--data")
        if self.num_examples > config.train_size:
            raise ConfigError(f"--num_examples {self.num_examples} exceeds the training pool (data.train_size "
                              f"{config.train_size}); raise train_size in --data or lower --num_examples")
        return config

    @property
    def data_config(self) -> DataConfig:
        """How this run's docs are sampled (``data`` as the typed object every step receives)."""
        from lm_forget.data.config import DataConfig

        return DataConfig(**dict(self.data or {}))

    def _resolve_revision(self) -> None:
        """``model_init_kwargs.revision`` (TRL's spelling for the trainer) and ``model_revision`` are one setting."""
        init = dict(self.model_init_kwargs or {}) if isinstance(self.model_init_kwargs, dict) else None
        if init is None or "revision" not in init:
            return
        revision = init.pop("revision")
        if self.model_revision not in (None, revision):
            raise ConfigError(f"--model_revision {self.model_revision!r} and model_init_kwargs.revision {revision!r} "
                              "disagree; give the revision once, as --model_revision")
        self.model_revision = revision
        self.model_init_kwargs = init

    def _resolve_precision(self) -> None:
        """Device-dependent defaults (bf16, activation checkpointing, use_cpu); explicit values are kept."""
        from lm_forget.train.device import resolve_precision

        checkpointing = self.activation_checkpointing
        if checkpointing is None:  # the deprecated alias counts as explicit too
            checkpointing = self.gradient_checkpointing
        precision = resolve_precision(bf16=self.bf16, fp16=self.fp16, activation_checkpointing=checkpointing,
                                      use_cpu=self.use_cpu)
        self.bf16, self.use_cpu = precision.bf16, precision.use_cpu
        self.activation_checkpointing = precision.activation_checkpointing

    @property
    def model_dtype(self) -> str:
        """dtype the base model is loaded in when ``model_init_kwargs`` names none (float32 on CPU)."""
        from lm_forget.train.device import resolve_precision

        return resolve_precision(use_cpu=self.use_cpu).dtype

    @property
    def forget_method(self) -> Method | None:
        """The registered forgetting method of this run (None for fine-tuning)."""
        from lm_forget.train.methods import get_method

        return get_method(self.method or "random_labels") if self.stage == "forget" else None

    @property
    def effective_label_mode(self) -> str:
        """The label mode this run trains with (``lm_forget.train.labels``): its method's, else the true labels."""
        method = self.forget_method
        return (method.label_mode if method is not None else None) or "true"  # loss methods score the gold answer

    @property
    def checkpoint_dir(self) -> Path:
        """Where the Trainer writes checkpoints (kept out of the folder that gets pushed)."""
        return Path(str(self.output_dir)) / CHECKPOINTS_DIR  # never pushed: checkpoints hold pickles

    def validate(self) -> None:
        """Checks that need the whole config (run before training, not at parse time)."""
        if not self.model:
            raise ConfigError("no base model: pass --model NAME_OR_PATH (or `model:` in the YAML config)")
        if not self.tasks:
            raise ConfigError("no tasks: pass --tasks forget_<task> [...] (or `tasks:` in the YAML config)")
        if not self.output_dir:
            raise ConfigError("no output folder: pass --output_dir DIR")
        self.check_output_dir()
        if self.push_to_hub and not self.hub_model_id:
            raise ConfigError("--push_to_hub needs the repo: add --hub_model_id me/NAME (TrainingArguments' names)")
        if self.push_to_hub:  # a card naming a local path would be refused after training: say so now
            from lm_forget.hub.base_model import require_hub_base_model, require_repo_id

            require_repo_id(str(self.hub_model_id), "--hub_model_id")
            require_hub_base_model(self.model, self.base_model_id, self.gguf_file)
        from lm_forget.train.peft_setup import check_quantization_environment

        check_quantization_environment(self)  # no CUDA / no bitsandbytes: say so before anything is written

    def check_output_dir(self) -> None:
        """Refuse an --output_dir that is, contains or lies inside an input, or holds files that are not a run."""
        from lm_forget.data.mirrors import mirror_root
        from lm_forget.outdirs import refuse_foreign, refuse_overlap
        from lm_forget.train.outputs import is_run_folder

        inputs = {"--model": self.model, "--init_adapter": self.init_adapter, "--tokenizer": self.tokenizer,
                  "the data mirror (LM_FORGET_DATA_DIR)": mirror_root(),
                  **{f"--task_dirs {d}": d for d in self.task_dirs}}
        refuse_overlap(str(self.output_dir), inputs, flag="--output_dir")
        refuse_foreign(str(self.output_dir), is_run_folder, flag="--output_dir", what="an lm-forget training run",
                       marker="forget_config.json")

    def to_sft_config(self) -> SFTConfig:
        """A plain ``SFTConfig`` for the trainer: checkpoints under ``output_dir/checkpoints``, no Trainer push.

        lm-forget pushes itself (own card, no pickles), so the Trainer's ``push_to_hub`` stays off.
        """
        names = {f.name for f in dataclasses.fields(SFTConfig) if f.init}
        # the deprecated gradient_checkpointing* aliases were already folded into activation_checkpointing*
        names -= {"gradient_checkpointing", "gradient_checkpointing_kwargs"}
        kwargs: dict[str, Any] = {name: getattr(self, name) for name in names}
        if "activation_checkpointing" not in names:  # transformers < 5.23 knows only the older name
            kwargs["gradient_checkpointing"] = bool(self.activation_checkpointing)
            kwargs["gradient_checkpointing_kwargs"] = getattr(self, "gradient_checkpointing_kwargs", None)
        kwargs.update(push_to_hub=False, hub_model_id=None, output_dir=str(self.checkpoint_dir))
        kwargs.update({name: None for name in TOKEN_FIELDS if name in kwargs})  # never pickled into checkpoints
        kwargs["completion_only_loss"] = True  # our dataset is pre-tokenized with a completion mask
        return SFTConfig(**kwargs)

    def settings(self) -> dict[str, Any]:
        """Every setting as JSON-able data, with secrets masked (for forget_config.json and the card)."""
        data = self.to_dict()
        for key in list(data):
            if key.endswith("_token") or key == "hub_token":
                data.pop(key)
        return data
