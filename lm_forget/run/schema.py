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

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    StrictBool,
    field_validator,
    model_validator,
)

from lm_forget.data.config import DataConfig
from lm_forget.modeling import ModelRef
from lm_forget.run.schema_train import (
    FinetuneSettings,
    ForgetSettings,
    MethodSpec,
    RelearnSettings,
    TrainSettings,
    _distinct,
)
from lm_forget.run.schema_types import (
    DEFAULT_STAGES,
    DYNAMICS_LIMIT,
    RELEARN_POOLS,
    STAGES,
    IntList,
    PositiveFloat,
    PositiveInt,
    Section,
    StrList,
    _listify,
    _strict_dataclass,
)

#: the schema's public names: this module's sections and ``RunConfig``, and the training sections and constants of
#: ``schema_train`` / ``schema_types`` (imported from here by the rest of the package)
__all__ = [
    "DEFAULT_STAGES", "DYNAMICS_LIMIT", "RELEARN_POOLS", "STAGES", "AnalysisSettings", "EvalSettings",
    "FinetuneSettings", "ForgetSettings", "MethodSpec", "MiaSettings", "PushSettings", "QuantizeSettings",
    "RelearnSettings", "RunConfig", "SeedSettings", "Section", "TaskSettings", "TrainSettings", "resolve_path",
]


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

    @model_validator(mode="after")
    def _placement_and_logging(self) -> EvalSettings:
        from lm_forget.run.section_checks import check_eval_settings

        check_eval_settings(self)
        return self


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
