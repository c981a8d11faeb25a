"""The training sections of the run config: ``finetune``, ``forget`` (with its methods) and ``relearn``.

Each *is* a set of ``ForgetConfig`` overrides: any ``ForgetConfig`` / TRL ``SFTConfig`` field may appear under its
own name (checked against ``ForgetConfig`` in ``run/section_checks.py``), beside a few study-only keys.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, ValidationInfo, field_validator, model_validator

from lm_forget.run.schema_types import (
    DYNAMICS_LIMIT,
    IntList,
    PositiveFloat,
    PositiveInt,
    Section,
    Seed,
    StrList,
)


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

    @field_validator("dynamics_every")
    @classmethod
    def _dynamics_in_process(cls, every: float | None, info: ValidationInfo) -> float | None:
        """Snapshots are scored by a callback of in-process training: a positive interval, no launcher."""
        if every is not None and (every <= 0 or info.data.get("launcher")):
            raise ValueError(f"{every!r}; give a positive number of steps (or a fraction of an epoch < 1), with "
                             "in-process training (no launcher).")
        return every

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

    @model_validator(mode="after")
    def _methods_registered(self) -> ForgetSettings:
        """``method`` and every ``methods`` entry against the method registry, parameters too."""
        check_methods(self)
        return self

    @model_validator(mode="after")
    def _seeded_by_seeds(self) -> ForgetSettings:
        _no_section_seed(self, "forget")
        return self


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

    @model_validator(mode="after")
    def _seeded_by_seeds(self) -> RelearnSettings:
        _no_section_seed(self, "relearn")
        return self


def _no_section_seed(section: TrainSettings, name: str) -> None:
    """``forget.seed`` / ``relearn.seed`` refused: the runner seeds those stages from ``seeds.forget``."""
    seed = (section.model_extra or {}).get("seed")
    if seed is not None:
        raise ValueError(f"seed: {seed} would be ignored: the {name} stage is seeded by the study's forget seeds "
                         f"(each seed one replicate); write seeds: [{seed}] (or seeds.forget: [{seed}]) and drop "
                         f"{name}.seed")


def label_rules() -> list[str]:
    """The registry's label-rule methods (``random_labels``, ``flipped_labels``): what ``forget.method`` takes."""
    from lm_forget.train.methods import get_method, method_names

    return [m for m in method_names() if get_method(m).is_label_rule]


def check_methods(forget: ForgetSettings) -> None:
    """ValueError, led by the key at fault (``method``, ``methods[i].args``...), unless ``forget.method`` and
    ``forget.methods`` name registered methods with valid parameters."""
    from lm_forget.errors import ConfigError, did_you_mean
    from lm_forget.train.methods import get_method, method_names

    if not forget.methods:
        from lm_forget.train.methods.label_rules import FLIPPED_LABELS, RANDOM_LABELS

        if forget.method in (RANDOM_LABELS.name, FLIPPED_LABELS.name):  # the built-in rules: no loss method loaded
            return
        rules = label_rules()
        if forget.method in rules:
            return
        if forget.method in method_names():
            raise ValueError(f"method: {forget.method!r} is a loss method; list it in forget.methods (e.g. methods: "
                             f"[{forget.method}]): each cell then carries its name")
        raise ValueError(f"method: {forget.method!r}.{did_you_mean(forget.method, rules)} Use one of "
                         f"{', '.join(rules)}, or list other forgetting methods in forget.methods")
    if forget.method != "random_labels":
        raise ValueError(f"method: {forget.method!r} applies only without forget.methods; list it among the "
                         "methods instead and drop forget.method")
    for i, spec in enumerate(forget.method_specs):  # names already registered ones: MethodSpec refuses unknowns
        if not spec.name:
            raise ValueError(f"methods[{i}]: no name; give a method name, e.g. {{name: npo, args: {{beta: 0.1}}}}")
        try:
            get_method(spec.name).parse_params(spec.args)
        except ConfigError as exc:
            raise ValueError(f"methods[{i}].args: {exc}") from None
    ids = [s.id for s in forget.method_specs]
    for spec_id in ids:
        if ids.count(spec_id) > 1:
            raise ValueError(f"methods: {spec_id!r} is listed twice; give each entry its own `label` (e.g. "
                             "{name: npo, label: npo_b05, args: {beta: 0.5}})")


