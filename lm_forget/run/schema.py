"""The run config's schema: one pydantic model per section, strict (an unknown key is an error).

Why pydantic (v2): it is the validation library the Python ecosystem already uses (FastAPI, lm-eval's own
config layer), gives typed attribute access, coercion with precise error locations and JSON/YAML-shaped
dumps for free, and composes with the stdlib dataclasses we pass between layers (``DataConfig``,
``ModelRef``). See docs/configuration.md for the comparison with ``HfArgumentParser`` and OmegaConf.

Training sections (``finetune``, ``forget``, ``relearn``) *are* ``ForgetConfig`` overrides: any
``ForgetConfig`` / TRL ``SFTConfig`` field may appear in them under its own name (checked against
``ForgetConfig`` in ``run/checks.py``), beside a few study-only keys (``num_examples`` sizes, ``launcher``,
``dynamics_every``, forget's ``methods``, relearn's ``pool``, ``unrelated_task`` and ``control``).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    TypeAdapter,
    field_validator,
)

from lm_forget.data.config import DataConfig
from lm_forget.errors import unknown_key_message
from lm_forget.modeling import ModelRef

# The stages of a study, in the only order that makes sense; a config lists a subsequence of them.
STAGES = ("eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "relearn", "eval_relearn",
          "mia", "eval_quantized", "eval_formats", "features", "analyze", "push")
# what a config without ``stages`` runs (relearning and pushing are opt-in)
DEFAULT_STAGES = ("eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "features", "analyze")
RELEARN_POOLS = ("forget_set", "held_in", "unrelated")
#: docs per task the dynamics callback scores by default (``dynamics_limit``): bounds its cost on large pools
DYNAMICS_LIMIT = 200


def _listify(value: Any) -> Any:
    """A single entry is a one-element list (``forget.num_examples: 100``)."""
    return [value] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value


def _strict_dataclass(cls: type) -> Any:
    """A BeforeValidator building stdlib dataclass ``cls`` from a mapping, unknown keys refused (did-you-mean)."""
    adapter = TypeAdapter(cls)

    def build(value: Any) -> Any:
        if isinstance(value, cls) or value is None:
            return cls() if value is None else value
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping of settings, got {value!r}")
        known = [f.name for f in fields(cls)]
        for key in value:
            if key not in known:
                raise ValueError(unknown_key_message(str(key), known))
        return adapter.validate_python(value)

    return BeforeValidator(build)


IntList = Annotated[list[int], BeforeValidator(_listify)]
# numbers that cannot work are refused by the schema (one line, before any folder exists)
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]
StrList = Annotated[list[str], BeforeValidator(_listify)]


class Section(BaseModel):
    """A config section: unknown keys are errors, values are coerced (YAML's ``1e-4`` string is a float)."""

    model_config = ConfigDict(extra="forbid", validate_default=False)


class TaskSettings(Section):
    """Which tasks each stage uses. Entries are task names, fnmatch patterns (``forget_*``) or ``suite``."""

    finetune: StrList = Field(default_factory=list, description="tasks the fine-tune stage trains on, as one mixture")
    forget: StrList = Field(default_factory=list, description="tasks to forget; each one is a cell of the matrix")
    eval: StrList = Field(default_factory=list, description="tasks evaluated after every stage (matrix columns)")
    task_dirs: StrList = Field(default_factory=list, description="extra folders of task YAMLs")
    utility: StrList = Field(default_factory=list, description=(
        "any lm-eval tasks (built-in, derived or user YAML in task_dirs; not forget_* suite tasks) scored with "
        "lm-eval's own metrics before and after forgetting: collateral damage, not part of the matrix"))


def _expand_task_lists(tasks: TaskSettings, info: Any) -> TaskSettings:
    from lm_forget.run.task_lists import expanded_task_settings

    return expanded_task_settings(tasks, info)


class TrainSettings(Section):
    """One training stage: ``ForgetConfig`` overrides under their own names, plus study-only keys."""

    model_config = ConfigDict(extra="allow")

    use_lora: StrictBool = Field(True, description="LoRA adapters (true) or full fine-tuning (false)")
    learning_rate: PositiveFloat = Field(2e-5, description="peak learning rate")
    num_train_epochs: PositiveFloat = Field(1.0, description="epochs over the training docs")
    max_steps: int = Field(-1, ge=-1, description="stop after this many optimizer steps (-1: use epochs)")
    per_device_train_batch_size: PositiveInt = Field(8, description="per-device train batch size")
    num_examples: int | None = Field(None, description="training docs per task (None: the whole pool)")
    launcher: StrList = Field(default_factory=list, description=(
        "run the step through a launcher: a shipped accelerate config (ddp, cpu_ddp, fsdp2, zero3, zero3_offload;"
        " configs/accelerate/), e.g. [zero3, --num_processes, '4'], a path to your own, or a full command"))
    dynamics_every: float | None = Field(None, description=(
        "score the forget pool every this many optimizer steps (>= 1) or fraction of an epoch (< 1; 0.25 is the "
        "recommended cost/resolution trade-off); None: off"))
    dynamics_limit: int | None = Field(DYNAMICS_LIMIT, ge=1, description=(
        "with dynamics_every: score at most this many docs per task of the forget pool (a fixed, hash-sampled "
        "subset, the same docs at every snapshot); None: the whole pool"))

    #: study-only keys: what the runner uses itself, never handed to ForgetConfig as they are
    study_keys: ClassVar[tuple[str, ...]] = ("num_examples", "launcher", "dynamics_every", "dynamics_limit")

    @property
    def trainer_settings(self) -> dict[str, Any]:
        """The ``ForgetConfig`` overrides of this section: declared fields and any further ``ForgetConfig`` key."""
        data = self.model_dump(exclude=set(self.study_keys))
        return {k: v for k, v in data.items() if v is not None or k in (self.model_extra or {})}


class FinetuneSettings(TrainSettings):
    """The fine-tune stage: one model on the mixture of ``tasks.finetune``, or one model per forgotten task."""

    per_task: StrictBool = Field(False, description=(
        "fine-tune one model per task of tasks.forget on that task alone, and forget each task from its own "
        "model (the per-task design); false: one model on the mixture of tasks.finetune (the suite design)"))
    seed: Seed = Field(0, description=(
        "training seed of the one fine-tune (data order, LoRA init); seeds.finetune makes it an axis instead. "
        "The forget and relearn stages are seeded by seeds.forget"))

    study_keys: ClassVar[tuple[str, ...]] = (*TrainSettings.study_keys, "per_task")


class MethodSpec(Section):
    """One forgetting method of ``forget.methods`` (a registered name, ``lm_forget.train.methods``)."""

    name: str = Field("", description="registered method name or alias (random_labels, npo...; docs/methods.md)")
    label: str | None = Field(None, description="the method's id in cell names (when one method is listed twice)")
    args: dict[str, Any] = Field(default_factory=dict, description="the method's own hyper-parameters")
    retain: StrList = Field(default_factory=list, description="retain-set tasks (default: other fine-tuned tasks)")
    retain_size: PositiveInt | None = Field(None, description="retain docs (default: as many as forget docs)")
    retain_weight: float | None = Field(None, description="retain-term weight (default: the method's)")
    learning_rate: PositiveFloat | None = Field(None, description="this method's learning rate (default: forget's)")
    num_train_epochs: PositiveFloat | None = Field(None, description="this method's epochs (default: forget's)")
    max_steps: int | None = Field(None, ge=-1, description="this method's step budget (default: forget's)")

    @field_validator("name")
    @classmethod
    def _registered_name(cls, name: str) -> str:
        """An alias becomes the registered name (the step key hashes it); an unknown name is refused."""
        return registered_method_name(name) if name else name

    @field_validator("label")
    @classmethod
    def _label_in_names(cls, label: str | None) -> str | None:
        if label is not None and (not label or any(c in label for c in "/\\ ")):
            raise ValueError(f"{label!r}; use a short name without '/', '\\' or spaces (it names the cells)")
        return label

    @property
    def id(self) -> str:
        return self.label or self.name

    def step_settings(self) -> dict[str, Any]:
        """What a forget step's outputs depend on (hashed into its key): the method and its settings."""
        return {k: v for k, v in self.model_dump().items() if k != "label" and v not in (None, [], {})}


def registered_method_name(name: str) -> str:
    """``name`` if it is a registered forgetting method; ValueError (did-you-mean) else."""
    from lm_forget.errors import did_you_mean
    from lm_forget.train.methods import method_names

    known = method_names()
    if name not in known:
        raise ValueError(f"unknown forgetting method {name!r}.{did_you_mean(name, known)} Known: "
                         f"{', '.join(known)} (docs/methods.md)")
    return name


def _method_entry(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


def _distinct(values: list[int] | None, example: str) -> list[int] | None:
    """An axis of cells: not empty, each value once (a duplicate would be the same cell twice)."""
    if values is None:
        return values
    if not values:
        raise ValueError(f"empty; {example}")
    if len(set(values)) != len(values):
        raise ValueError(f"{values} has duplicates (each value is one cell: list it once)")
    return values


class ForgetSettings(TrainSettings):
    """The forget stage: random (or flipped) labels, or any registered forgetting method."""

    learning_rate: PositiveFloat = Field(1e-4, description="peak learning rate (the paper's forget pass: 1e-4)")
    method: str = Field("random_labels", description="the forgetting method without a methods axis: random_labels "
                        "(the paper's) or flipped_labels")
    num_examples: IntList = Field(default_factory=lambda: [1000], description=(  # type: ignore[assignment]
        "forget-set sizes (the first N docs of the pool), each its own cell (the paper: 1000 and 100)"))
    methods: list[Annotated[MethodSpec, BeforeValidator(_method_entry)]] = Field(
        default_factory=list, description="forgetting methods to compare: one more axis of the study")

    study_keys: ClassVar[tuple[str, ...]] = (*TrainSettings.study_keys, "methods", "method")

    @field_validator("num_examples")
    @classmethod
    def _one_cell_per_size(cls, sizes: list[int]) -> list[int]:
        if any(n < 1 for n in sizes):
            raise ValueError(f"{sizes}: each size must be a positive number of docs")
        return _distinct(sizes, "give forget-set sizes, e.g. [1000, 100]") or sizes

    @property
    def method_specs(self) -> list[MethodSpec]:
        return list(self.methods)


class RelearnSettings(TrainSettings):
    """Relearning: fine-tune each forgotten model again on gold labels for ``k`` docs of its task."""

    learning_rate: PositiveFloat = Field(3e-5, description="peak learning rate (a secondary reading of the paper)")
    num_examples: IntList = Field(default_factory=lambda: [10, 100], description=(  # type: ignore[assignment]
        "relearning-set sizes k, each its own step per forget cell"))
    pool: Literal["forget_set", "held_in", "unrelated"] = Field("forget_set", description=(
        "forget_set: the first k docs of the forget set; held_in: the k pool docs right after it; unrelated: k "
        "hash-chosen docs of unrelated_task, a task neither forgotten nor evaluated"))
    unrelated_task: str | None = Field(None, description=(
        "pool unrelated: the task whose docs are relearned (not in tasks.forget or tasks.eval); None: per "
        "forgotten task, the first of tasks.finetune then the suite that is in neither and of another domain"))
    control: StrictBool = Field(True, description=(
        "also relearn the pretrained model (never fine-tuned or forgotten) on the same docs with the same "
        "settings: what the relearning set teaches by itself; the report nets recovery of it"))
    use_lora: StrictBool | None = Field(None, description="None follows forget.use_lora (another value is refused)")

    study_keys: ClassVar[tuple[str, ...]] = (*TrainSettings.study_keys, "pool", "unrelated_task", "control")


class MiaSettings(Section):
    """Stage ``mia``: membership inference of the forget set against held-out docs (analysis/mia.py)."""

    k: float = Field(0.2, gt=0, le=1, description="fraction of least likely tokens of min-k% and min-k%++ "
                                                   "(open-unlearning's default 0.2)")


class QuantizeSettings(Section):
    """Stage ``eval_quantized``: forgotten and fine-tuned models merged, quantized, scored (run/quantized.py)."""

    bits: IntList = Field(default_factory=lambda: [8, 4], description="weight precisions: 8 (int8), 4 (nf4)")
    quantizer: Literal["bitsandbytes"] = Field("bitsandbytes", description="the quantizer transformers loads with")


def _eval_limit(value: float) -> int | float:
    """lm-eval's ``limit``: a number of docs (a whole number >= 1) or a fraction (0 < x < 1)."""
    import math

    if not math.isfinite(value) or value <= 0 or (value >= 1 and not value.is_integer()):
        raise ValueError(f"{value!r} is neither a number of docs (a whole number >= 1) nor a fraction (0 < x < 1)")
    return int(value) if value >= 1 else value


class EvalSettings(Section):
    """lm-eval settings shared by every evaluation step."""

    backend: Literal["hf", "vllm"] = Field("hf", description="lm-eval backend: hf (adapters swapped) or vllm")
    batch_size: PositiveInt | str = Field(8, description="lm-eval batch size (an int or auto)")
    limit: Annotated[float, AfterValidator(_eval_limit)] | None = Field(None, description=(
        "evaluate only the first N docs (a whole number >= 1) or a fraction of them (0 < x < 1)"))
    model_args: dict[str, Any] = Field(default_factory=dict, description="extra lm-eval model_args")
    hf_hub_log_args: dict[str, Any] = Field(default_factory=dict, description="lm-eval --hf_hub_log_args")
    wandb_args: dict[str, Any] = Field(default_factory=dict, description="lm-eval --wandb_args")
    swap_adapters: StrictBool = Field(True, description="evaluate LoRA adapters on one loaded base model")
    device_map: str | None = Field(None, description=(
        "hf: load the base with this transformers device_map (auto: spread over every visible GPU, for models "
        "larger than one device); adapters still swap on it. None: the whole model on the study's device"))
    num_fewshot: int | None = Field(None, ge=0, description="few-shot examples (the paper: zero-shot)")
    forget_scope: Literal["all", "self"] = Field("all", description="score each forget model on all tasks or its own")


class AnalysisSettings(Section):
    """Features and the final analysis."""

    layer: int = Field(-5, description="hidden layer of the variance feature (-5: fifth from last)")
    feature_split: Literal["train", "test"] = Field("train", description="docs of the features (train: forget pool)")
    feature_limit: PositiveInt | None = Field(None, description="at most this many docs per task for features")
    probes: StrictBool = Field(False, description="linear probes (with shuffled-label controls) on every model")
    options: dict[str, Any] = Field(default_factory=dict, description="AnalysisOptions fields (checked)")

    @field_validator("options")
    @classmethod
    def _analysis_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        from lm_forget.run.section_checks import check_analysis_options

        check_analysis_options(options)  # ConfigError naming analysis.options (a located message already)
        return options


def _seed_axes(value: Any) -> Any:
    """``seeds: [0, 1]`` (or one int) is the forget seeds of one fine-tune: ``{forget: [0, 1]}``."""
    if isinstance(value, (int, list, tuple)) and not isinstance(value, bool):
        return {"forget": _listify(value)}
    return value


# sections a YAML may also write in a short form: the normaliser that expands it (``--set`` reaches inside)
SHORTHANDS = {"seeds": _seed_axes}


class SeedSettings(Section):
    """The seed axes of a study: fine-tune seeds and forget seeds (every pair is one replicate of each cell)."""

    finetune: IntList | None = Field(None, description=(
        "fine-tune seeds, each its own fine-tuned model (None: one fine-tune with finetune.seed)"))
    forget: IntList = Field(default_factory=lambda: [0], description="forget seeds (labels, data order, LoRA init)")

    @field_validator("finetune", "forget")
    @classmethod
    def _one_replicate_per_seed(cls, seeds: list[int] | None) -> list[int] | None:
        return _distinct(seeds, "give at least one seed, e.g. [0]")


class PushSettings(Section):
    """Pushing forget adapters to the Hub (stage ``push``)."""

    repo_prefix: str = Field("", description="repos are <repo_prefix>-<task>-n<N>-s<seed>")
    private: StrictBool = Field(True, description="create private repos")
    revision: str | None = Field(None, description="branch to push to (None: main)")
    base_model_id: str | None = Field(None, description="Hub id of a local base model that records none")
    suite_dataset: str | None = Field(None, description="Hub dataset of the suite, cited by the cards")
    collection: str | None = Field(None, description="title of a Hub collection grouping the adapters")
    timeout: PositiveFloat | None = Field(None, description="network deadline per Hub request (s)")


class RunConfig(Section):
    """A whole forgetting study (see docs/configuration.md)."""

    run_dir: str = Field("runs/study", description="folder holding every step's outputs")
    name: str = Field("study", description="a label for reports")
    model: Annotated[ModelRef, _strict_dataclass(ModelRef)] = Field(default_factory=ModelRef)
    # suite and patterns expanded into a new section (run/task_lists.py); validation never edits what was written
    tasks: Annotated[TaskSettings, AfterValidator(_expand_task_lists)] = Field(default_factory=TaskSettings)
    stages: StrList = Field(default_factory=lambda: list(DEFAULT_STAGES))
    device: str = Field("cpu", description=(
        "where every step runs, training and evaluation alike: cpu, cuda, cuda:0... (training on cpu resolves "
        "bf16 and activation checkpointing for it; a launcher places processes itself)"))
    seeds: Annotated[SeedSettings, BeforeValidator(_seed_axes)] = Field(default_factory=SeedSettings)
    data: Annotated[DataConfig, _strict_dataclass(DataConfig)] = Field(default_factory=DataConfig)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    forget: ForgetSettings = Field(default_factory=ForgetSettings)
    relearn: RelearnSettings = Field(default_factory=RelearnSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    mia: MiaSettings = Field(default_factory=MiaSettings)
    quantize: QuantizeSettings = Field(default_factory=QuantizeSettings)
    threads: PositiveInt | None = Field(None, description="torch CPU threads (1 is fastest for tiny models)")

    # where the config came from: relative paths resolve against it (not a YAML key)
    _base_dir: str = PrivateAttr(default=".")
    # the YAML file it was loaded from ("" when built in Python): a run dir holding it is the user's layout
    _source_file: str = PrivateAttr(default="")

    @property
    def base_dir(self) -> str:
        return self._base_dir

    @base_dir.setter
    def base_dir(self, value: str) -> None:
        self._base_dir = value

    @property
    def source_file(self) -> str:
        return self._source_file

    @source_file.setter
    def source_file(self, value: str) -> None:
        self._source_file = value

    @property
    def run_path(self) -> Path:
        return resolve_path(self.run_dir, self.base_dir)

    @property
    def task_dir_paths(self) -> list[Path]:
        return [resolve_path(p, self.base_dir) for p in self.tasks.task_dirs]

    @property
    def model_path(self) -> str:
        """The model id, or the absolute folder when it names a local folder."""
        local = resolve_path(self.model.name_or_path, self.base_dir)
        return str(local) if local.exists() else self.model.name_or_path

    @property
    def forget_seeds(self) -> list[int]:
        return list(self.seeds.forget)

    @property
    def finetune_seeds(self) -> list[int | None]:
        """The fine-tune seed axis: ``seeds.finetune``, or ``[None]`` (one fine-tune, seeded by finetune.seed)."""
        return list(self.seeds.finetune) if self.seeds.finetune is not None else [None]

    @property
    def forget_sizes(self) -> list[int]:
        return list(self.forget.num_examples)

    def to_dict(self) -> dict[str, Any]:
        """The YAML shape (``config.yaml`` in the run folder loads back to an equal config)."""
        return self.model_dump(mode="json")


def resolve_path(path: str, base: str) -> Path:
    import os

    p = Path(os.path.expandvars(path)).expanduser()
    return p if p.is_absolute() else (Path(base) / p).resolve()
