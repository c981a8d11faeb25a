"""The run config: one YAML file, one dataclass tree, checked completely before any work starts.

Example (``configs/llama2_suite.yaml``)::

    run_dir: runs/llama2_suite
    model: {name_or_path: meta-llama/Llama-2-7b-hf}
    tasks: {finetune: [suite], forget: [suite], eval: [suite]}
    stages: [eval_pretrained, finetune, eval_finetuned, forget, eval_forget, features, analyze]
    seeds: [0, 1, 2]
    forget: {label_mode: random, num_examples: [1000], learning_rate: 1.0e-4}

Every section is a dataclass below; an unknown key anywhere is an error that names the section and the
keys it accepts, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from lm_forget.data.config import DataConfig
from lm_forget.errors import ConfigError

# The stages of a study, in the only order that makes sense; a config lists a subsequence of them.
STAGES = ("eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "relearn", "eval_relearn",
          "features", "analyze", "push")
# what a config without ``stages`` runs (relearning and pushing are opt-in)
DEFAULT_STAGES = ("eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "features", "analyze")
# stage -> stages it needs in the same config (anything else may come from a model that is already fine-tuned).
STAGE_NEEDS = {
    "eval_finetuned": ("finetune",),
    "eval_forget": ("forget",),
    "relearn": ("forget",),
    "eval_relearn": ("relearn",),
    "analyze": ("eval_forget",),
    "push": ("forget",),
}
RELEARN_POOLS = ("forget_set", "held_in")
BACKENDS = ("hf", "vllm")


@dataclass
class ModelSettings:
    """The pretrained model.

    Attributes:
        name_or_path: Hub id or local folder of the base model.
        revision: Hub revision (branch, tag or commit); pin it for reproducible studies.
        tokenizer: tokenizer id or folder when it differs from the model's.
        dtype: torch dtype for training and evaluation (``auto``, ``bfloat16``, ``float32``...).
    """

    name_or_path: str = ""
    revision: str | None = None
    tokenizer: str | None = None
    dtype: str = "auto"


@dataclass
class TaskSettings:
    """Which tasks each stage uses. Entries are task names, fnmatch patterns (``forget_*``) or ``suite``.

    Attributes:
        finetune: tasks the fine-tune stage trains on, as one mixture.
        forget: tasks to forget; each one (times seeds and example counts) is one cell of the matrix.
        eval: tasks evaluated after every stage; the columns of the cross-task matrix.
        task_dirs: extra folders of task YAMLs (derived tasks, the demo's tasks).
    """

    finetune: list[str] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)
    eval: list[str] = field(default_factory=list)
    task_dirs: list[str] = field(default_factory=list)


@dataclass
class TrainSettings:
    """One training stage, handed to ``lm_forget.train.api.train``.

    Attributes:
        lora: LoRA adapters (True) or full fine-tuning (False).
        learning_rate: peak learning rate.
        num_train_epochs: epochs over the training docs.
        max_steps: stop after this many optimizer steps (-1: use epochs).
        batch_size: per-device train batch size.
        num_examples: training docs per task (None: the whole pool).
        seed: training seed (data order, LoRA init).
        args: any further ``ForgetConfig`` / ``SFTConfig`` fields, passed through unchanged.
        launcher: run the step as ``<launcher> -m lm_forget.train --config <step>/train_config.yaml`` in a
            subprocess, e.g. ``[zero3]`` (a shipped accelerate config: ddp, cpu_ddp, fsdp2, zero3,
            zero3_offload; see configs/accelerate/), ``[zero3, --num_processes, "4"]``, a path to your own
            accelerate YAML, or a full command such as ``[accelerate, launch, --multi_gpu]``; empty: train in
            this process.
        dynamics_every: score the forget pool during training every this many optimizer steps (>= 1)
            or this fraction of an epoch (< 1), as lm-eval scores it, into ``<step>/output/dynamics.parquet``
            (in-process training only); None: off.
    """

    lora: bool = True
    learning_rate: float = 2e-5
    num_train_epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 8
    num_examples: int | None = None
    seed: int = 0
    args: dict[str, Any] = field(default_factory=dict)
    launcher: list[str] = field(default_factory=list)
    dynamics_every: float | None = None


@dataclass
class MethodSpec:
    """One forgetting method of ``forget.methods`` (a registered name, ``lm_forget.train.methods``).

    Attributes:
        name: registered method name or alias (``random_labels``, ``npo``...; see docs/methods.md).
        label: the method's id in cell names and reports (default: its name; needed when a method is
            listed twice with different parameters).
        args: the method's own hyper-parameters (``--method_args``), e.g. ``{beta: 0.1}`` for npo.
        retain: retain-set tasks (``--retain``; default: the other fine-tuned tasks).
        retain_size: retain docs (``--retain_size``; default: as many as forget docs).
        retain_weight: retain-term weight (``--retain_weight``; default: the method's).
        learning_rate: this method's learning rate (default: ``forget.learning_rate``).
        num_train_epochs: this method's epochs (default: ``forget.num_train_epochs``).
        max_steps: this method's step budget (default: ``forget.max_steps``).
    """

    name: str = ""
    label: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    retain: list[str] = field(default_factory=list)
    retain_size: int | None = None
    retain_weight: float | None = None
    learning_rate: float | None = None
    num_train_epochs: float | None = None
    max_steps: int | None = None

    @property
    def id(self) -> str:
        return self.label or self.name

    def step_settings(self) -> dict[str, Any]:
        """What a forget step's outputs depend on (hashed into its key): the method and its settings."""
        return {k: v for k, v in vars(self).items() if k != "label" and v not in (None, [], {})}


def label_rule_modes() -> dict[str, str]:
    """``label_mode`` values the registry's label-rule methods train (``random``, ``flip``) -> method name."""
    from lm_forget.train.methods import get_method, method_names

    return {get_method(m).label_mode: m for m in method_names() if get_method(m).is_label_rule}


@dataclass
class ForgetSettings(TrainSettings):
    """The forget stage: a second fine-tuning pass on random (or flipped) labels, or any registered method.

    Attributes:
        label_mode: ``random`` (uniform over the two choices) or ``flip`` (always the wrong choice): the
            label of a registered label-rule method (used when ``methods`` is empty).
        num_examples: forget-set sizes (the first N docs of the pool), each its own cell of the study
            (the paper: 1,000, and 100); a single number is a one-element list.
        methods: forgetting methods to compare, one more axis of the study (cells: method x task x size x
            seed). Each entry is a registered name (``npo``) or a mapping ``{name: npo, args: {beta: 0.1},
            retain_weight: 1.0, learning_rate: 1.0e-5}`` (``MethodSpec``). Empty: ``label_mode``, as before.
    """

    learning_rate: float = 1e-4
    label_mode: str = "random"
    num_examples: list[int] = field(default_factory=lambda: [1000])
    methods: list[MethodSpec | str] = field(default_factory=list)

    @property
    def method_specs(self) -> list[MethodSpec]:
        """``methods`` as specs (names become ``MethodSpec(name)``); empty without the axis."""
        return [m if isinstance(m, MethodSpec) else MethodSpec(name=m) for m in self.methods]


@dataclass
class RelearnSettings(TrainSettings):
    """The relearn stage: fine-tune each forgotten model again on gold labels for a few docs of its task.

    Is the skill still there? A model that merely hides it recovers from a handful of examples. Each
    forget cell is relearned once per ``k`` in ``num_examples``, starting from the cell's output (its
    adapter, or its full weights), with the cell's seed; ``eval_relearn`` then scores it on the held-out
    splits as ``eval_forget`` scores the forget cell.

    Attributes:
        learning_rate: peak learning rate (3e-5; a secondary reading of the paper, to be verified).
        num_examples: relearning-set sizes ``k``, each its own step per forget cell (default 10 and 100).
        pool: where the ``k`` docs come from: ``forget_set`` (default; the first ``k`` docs of the cell's
            forget set, as most unlearning work relearns on a subset of the forget set) or ``held_in``
            (the ``k`` training-pool docs right after the forget set: same task, never forgotten).
        lora: None (default) follows ``forget.lora``: a LoRA forget adapter is trained further, a fully
            fine-tuned forget model is fine-tuned fully; a different value is refused.
        seed: unused: each relearn step runs with its forget cell's seed.
    """

    learning_rate: float = 3e-5
    num_examples: list[int] = field(default_factory=lambda: [10, 100])
    pool: str = "forget_set"
    lora: bool | None = None  # type: ignore[assignment]


@dataclass
class EvalSettings:
    """lm-eval settings shared by every evaluation step.

    Attributes:
        backend: lm-eval model backend, ``hf`` (in-process, adapters swapped on one loaded base) or ``vllm``.
        batch_size: lm-eval batch size (an int or ``auto``).
        limit: evaluate only the first N docs (or a fraction) of each task; None: all.
        device: ``cpu``, ``cuda``, ``cuda:0``...
        model_args: extra lm-eval ``model_args`` (e.g. ``max_length``, ``gpu_memory_utilization``).
        hf_hub_log_args: lm-eval's ``--hf_hub_log_args`` as a mapping (``hub_results_org``,
            ``push_results_to_hub``...); the token comes from ``HF_TOKEN``, never from here.
        wandb_args: lm-eval's ``--wandb_args`` as a mapping (``project``, ``name``...), for ``wandb.init``.
        swap_adapters: evaluate LoRA adapters on one loaded base model instead of reloading it per cell.
        num_fewshot: few-shot examples (the paper: zero-shot).
        forget_scope: what each forgotten model is scored on: ``all`` eval tasks (the cross-task matrix)
            or ``self``, only the task it forgot (per-task forgetting, n times cheaper).
    """

    backend: str = "hf"
    batch_size: int | str = 8
    limit: int | float | None = None
    device: str = "cpu"
    model_args: dict[str, Any] = field(default_factory=dict)
    hf_hub_log_args: dict[str, Any] = field(default_factory=dict)
    wandb_args: dict[str, Any] = field(default_factory=dict)
    swap_adapters: bool = True
    num_fewshot: int | None = None
    forget_scope: str = "all"


@dataclass
class AnalysisSettings:
    """Features and the final analysis.

    Attributes:
        layer: hidden layer for the variance feature (-5: fifth from last, as in the paper).
        feature_split: which docs the features are computed on (``train``: the forget pool).
        feature_limit: at most this many docs per task for features (None: all).
        probes: also train linear probes (right vs wrong answer, plus a shuffled-label control probe) on the
            pretrained, the fine-tuned and every forgotten model.
        options: further keyword arguments for ``lm_forget.analysis.api.analyze`` (``AnalysisOptions``).
    """

    layer: int = -5
    feature_split: str = "train"
    feature_limit: int | None = None
    probes: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PushSettings:
    """Pushing forget adapters to the Hub (stage ``push``).

    Attributes:
        repo_prefix: repos are named ``<repo_prefix>-<task>-n<N>-s<seed>`` (e.g. ``me/llama2-7b-forget``).
        private: create private repos.
        revision: branch to push to (None: main).
        base_model_id: Hub id of the base model when ``model.name_or_path`` is a local folder that does not
            record one (the Hub needs ``base_model`` to be a Hub id).
        suite_dataset: Hub dataset of the suite (``lm-forget tasks push``), cited by the cards' model-index.
        collection: title of a Hub collection grouping the study's adapters (created once; None: none).
        timeout: network deadline in seconds for each Hub request (None: ``LM_FORGET_HUB_TIMEOUT`` or 60).
    """

    repo_prefix: str = ""
    private: bool = True
    revision: str | None = None
    base_model_id: str | None = None
    suite_dataset: str | None = None
    collection: str | None = None
    timeout: float | None = None


@dataclass
class RunConfig:
    """A whole forgetting study.

    Attributes:
        run_dir: folder holding every step's outputs. Relative paths (here, in ``tasks.task_dirs`` and
            ``model.name_or_path``) resolve against the current directory, as lm_eval's do.
        name: a label for reports.
        model: the pretrained model.
        tasks: which tasks each stage uses.
        stages: the stages to run, a subsequence of ``STAGES`` in that order.
        seeds: forget seeds; the analysis reports mean and CI across them.
        data: how docs are sampled (``lm_forget.data.DataConfig``, passed whole to every step).
        finetune: the fine-tune stage.
        forget: the forget stage.
        relearn: the relearn stage (gold labels again, on a few docs of each forgotten task).
        eval: lm-eval settings.
        analysis: features and analysis options.
        push: Hub push options.
        threads: torch CPU threads for this process (None: torch's default). 1 is fastest for tiny models
            on a shared CPU, where threads mostly wait for each other.
    """

    run_dir: str = "runs/study"
    name: str = "study"
    model: ModelSettings = field(default_factory=ModelSettings)
    tasks: TaskSettings = field(default_factory=TaskSettings)
    stages: list[str] = field(default_factory=lambda: list(DEFAULT_STAGES))
    seeds: list[int] = field(default_factory=lambda: [0])
    data: DataConfig = field(default_factory=DataConfig)
    finetune: TrainSettings = field(default_factory=lambda: TrainSettings(lora=True))
    forget: ForgetSettings = field(default_factory=ForgetSettings)
    relearn: RelearnSettings = field(default_factory=RelearnSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    push: PushSettings = field(default_factory=PushSettings)
    threads: int | None = None
    # where the config came from: relative paths resolve against it (not a YAML key)
    base_dir: str = field(default=".", metadata={"internal": True})

    @property
    def run_path(self) -> Path:
        return _resolve(self.run_dir, self.base_dir)

    @property
    def task_dir_paths(self) -> list[Path]:
        return [_resolve(p, self.base_dir) for p in self.tasks.task_dirs]

    @property
    def model_path(self) -> str:
        """The model id, or the absolute folder when it names a local folder."""
        local = _resolve(self.model.name_or_path, self.base_dir)
        return str(local) if local.exists() else self.model.name_or_path

    @property
    def forget_sizes(self) -> list[int]:
        return list(self.forget.num_examples)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("base_dir", None)
        return data


def _resolve(path: str, base: str) -> Path:
    p = Path(os.path.expandvars(path)).expanduser()
    return p if p.is_absolute() else (Path(base) / p).resolve()


# ---------------------------------------------------------------- dict -> dataclass, strictly


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(data).__name__} {data!r}.")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if not f.metadata.get("internal")}
    unknown = [k for k in data if k not in known]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), list(known), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{where}: unknown key {key!r}.{hint} Allowed keys: {', '.join(sorted(known))}."
        )
    values = {}
    for name, value in data.items():
        values[name] = _coerce(hints[name], value, f"{where}.{name}")
    try:
        return cls(**values)
    except TypeError as exc:  # a required field without a default
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if is_dataclass(tp):
        return _from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        if isinstance(value, dict) and errors:  # a mapping meant the dataclass: say what was wrong in it
            raise ConfigError(errors[0])
        raise ConfigError(f"{where}: {value!r} is not a valid {_type_name(tp)}.")
    if origin is list:
        if isinstance(value, (str, int, float)):
            value = [value]  # a single entry is a one-element list
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}.")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}.")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}.")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{where}: expected an integer, got {value!r}.")
        return int(value)
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads 1e-4 (no dot) as a string
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}.")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}.")
        return str(value)
    return value


def _type_name(tp: Any) -> str:
    return str(tp).replace("typing.", "")


# ---------------------------------------------------------------- validation


def validate_stages(stages: list[str]) -> None:
    """Stages must be known, unique, in study order, and have what they need."""
    if not stages:
        raise ConfigError(f"stages: empty; list some of {', '.join(STAGES)} (in that order).")
    for stage in stages:
        if stage not in STAGES:
            close = difflib.get_close_matches(stage, STAGES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"stages: unknown stage {stage!r}.{hint} Stages are: {', '.join(STAGES)}.")
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


def expand_tasks(entries: list[str], known: list[str], where: str) -> list[str]:
    """Expand ``suite`` and fnmatch patterns; keep plain names (checked later); drop duplicates, keep order."""
    from lm_forget.data.api import suite_task_names

    out: list[str] = []
    for entry in entries:
        if entry == "suite":
            names = suite_task_names()
        elif any(ch in entry for ch in "*?["):
            names = [n for n in known if fnmatch.fnmatchcase(n, entry)]
            if not names:
                raise ConfigError(f"{where}: pattern {entry!r} matches no known task.")
        else:
            names = [entry]
        out += [n for n in names if n not in out]
    return out


def _yaml_task_names(dirs: list[Path]) -> list[str]:
    """Task names declared by YAMLs in ``dirs`` (for pattern expansion)."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    names: list[str] = []
    for root in dirs:
        for path in sorted(root.rglob("*.yaml")) if root.is_dir() else []:
            try:
                cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - SafeLoader
            except (yaml.YAMLError, OSError):
                continue
            if isinstance(cfg, dict) and isinstance(cfg.get("task"), str):
                names.append(cfg["task"])
    return names


def _check_trainer_args(config: RunConfig) -> None:
    """``finetune.args`` / ``forget.args`` must be ``ForgetConfig`` (SFTConfig) fields: typos fail now."""
    used = [(name, section.args) for name, section in (("finetune", config.finetune), ("forget", config.forget),
                                                       ("relearn", config.relearn))
            if section.args and name in config.stages]
    if not used:
        return
    try:
        from lm_forget.train.config import ForgetConfig
    except ImportError:  # the trainer is optional for eval-only studies
        return
    from lm_forget.train.config import refuse_token_settings

    known = {f.name for f in fields(ForgetConfig) if f.init}
    for name, args in used:
        refuse_token_settings(args, f"{name}.args.")
        for key in args:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{name}.args: unknown trainer setting {key!r}.{hint} Keys here are "
                                  "ForgetConfig / TRL SFTConfig fields (see `lm-forget train --help`).")


def check_forget_methods(forget: ForgetSettings) -> None:
    """``forget.label_mode`` and every ``forget.methods`` entry against the method registry, parameters too."""
    if not forget.methods:
        modes = label_rule_modes()
        if forget.label_mode not in modes:
            close = difflib.get_close_matches(forget.label_mode, list(modes), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"forget.label_mode: {forget.label_mode!r}.{hint} Use one of {', '.join(modes)}, "
                              "or list other forgetting methods in forget.methods.")
        return
    from lm_forget.train.methods import get_method, method_names
    from lm_forget.train.methods.registry import ALIASES

    if forget.label_mode != "random":
        raise ConfigError(f"forget.label_mode: {forget.label_mode!r} applies only without forget.methods; list the "
                          "label rule among the methods instead (flip = flipped_labels) and drop label_mode.")
    specs = forget.method_specs
    known = method_names() + sorted(ALIASES)
    for i, spec in enumerate(specs):
        where = f"forget.methods[{i}]"
        if not spec.name:
            raise ConfigError(f"{where}: no name; give a method name, e.g. {{name: npo, args: {{beta: 0.1}}}}.")
        if spec.name not in known:
            close = difflib.get_close_matches(spec.name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown forgetting method {spec.name!r}.{hint} Known: "
                              f"{', '.join(method_names())} (docs/methods.md).")
        method = get_method(spec.name)
        spec.name = method.name  # aliases resolve to the registered name (and the step key)
        try:
            method.parse_params(spec.args)
        except ConfigError as exc:
            raise ConfigError(f"{where}.args: {exc}") from None
        if spec.retain_size is not None and spec.retain_size < 1:
            raise ConfigError(f"{where}.retain_size: {spec.retain_size}; give a positive number of docs.")
        if spec.label is not None and (not spec.label or any(c in spec.label for c in "/\\ ")):
            raise ConfigError(f"{where}.label: {spec.label!r}; use a short name without '/', '\\' or spaces.")
    forget.methods = list(specs)
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


def _check_relearn(config: RunConfig) -> None:
    """``relearn``: sizes that fit the chosen pool, the forget stage's LoRA choice, in-process docs."""
    section = config.relearn
    if config.forget.methods:
        raise ConfigError("stage relearn with forget.methods is not supported yet (relearn cells follow the "
                          "single-method forget cells); run the method comparison and the relearning study as two "
                          "configs, or drop relearn/eval_relearn from stages.")
    if section.pool not in RELEARN_POOLS:
        raise ConfigError(f"relearn.pool: {section.pool!r}; use one of {RELEARN_POOLS}.")
    if not section.num_examples or any(k < 1 for k in section.num_examples):
        raise ConfigError(f"relearn.num_examples: {section.num_examples}; give positive numbers of docs, "
                          "e.g. [10, 100].")
    if len(set(section.num_examples)) != len(section.num_examples):
        raise ConfigError(f"relearn.num_examples: {section.num_examples} has duplicates.")
    if section.lora is not None and section.lora != config.forget.lora:
        raise ConfigError(f"relearn.lora: {section.lora} differs from forget.lora ({config.forget.lora}); relearning "
                          "continues the forget model as it was trained. Leave relearn.lora unset.")
    if section.dynamics_every is not None:
        raise ConfigError("relearn.dynamics_every: not supported (dynamics score the forget pool); remove it.")
    sizes = [int(n or config.data.train_size) for n in config.forget_sizes]
    for k in section.num_examples:
        if section.pool == "forget_set" and k > min(sizes):
            raise ConfigError(f"relearn.num_examples: {k} docs do not fit in a forget set of {min(sizes)} "
                              "(pool forget_set); lower it or use relearn.pool: held_in.")
        if section.pool == "held_in" and max(sizes) + k > config.data.train_size:
            raise ConfigError(f"relearn.num_examples: {k} held-in docs after a forget set of {max(sizes)} exceed "
                              f"data.train_size {config.data.train_size}; lower it or raise data.train_size.")
    if section.pool == "held_in" and section.launcher:
        raise ConfigError("relearn.launcher: pool held_in trains in this process (it hands the trainer its docs); "
                          "use pool forget_set with a launcher, or drop the launcher.")


def validate_config(config: RunConfig, *, check_tasks: bool = True) -> RunConfig:
    """Check everything that can be checked without loading a model; expand task patterns in place."""
    validate_stages(config.stages)
    if not config.model.name_or_path:
        raise ConfigError("model.name_or_path: missing; name the pretrained model (Hub id or local folder).")
    if not config.seeds:
        raise ConfigError("seeds: empty; give at least one seed, e.g. [0].")
    if len(set(config.seeds)) != len(config.seeds):
        raise ConfigError(f"seeds: {config.seeds} has duplicates.")
    check_forget_methods(config.forget)
    if config.eval.forget_scope not in ("all", "self"):
        raise ConfigError(f"eval.forget_scope: {config.eval.forget_scope!r}; use 'all' (matrix) or 'self'.")
    if config.eval.backend not in BACKENDS:
        raise ConfigError(f"eval.backend: {config.eval.backend!r}; use one of {BACKENDS}.")
    for name in ("finetune", "forget"):
        section = getattr(config, name)
        if section.dynamics_every is not None and (section.dynamics_every <= 0 or section.launcher):
            raise ConfigError(f"{name}.dynamics_every: {section.dynamics_every!r}; give a positive number of steps "
                              "(or a fraction of an epoch < 1), with in-process training (no launcher).")
    for n in config.forget_sizes:
        if n is not None and n < 1:
            raise ConfigError(f"forget.num_examples: {n} must be a positive number of docs.")
    if "relearn" in config.stages:
        _check_relearn(config)
    _check_trainer_args(config)
    _check_hub_log_args(config.eval.hf_hub_log_args)
    if "push" in config.stages:  # a card naming a local path would be refused at the end of the study
        from lm_forget.hub.base_model import require_hub_base_model

        require_hub_base_model(config.model_path, config.push.base_model_id)
    if "push" in config.stages and not config.push.repo_prefix:
        raise ConfigError("push.repo_prefix: needed by stage 'push' (e.g. me/llama2-7b-forget).")
    for d in config.task_dir_paths:
        if not d.is_dir():
            raise ConfigError(f"tasks.task_dirs: {d} is not a folder of task YAMLs.")
    from lm_forget.data.api import suite_task_names

    known = suite_task_names() + _yaml_task_names(config.task_dir_paths)
    needed = {
        "finetune": "finetune" in config.stages,
        "forget": "forget" in config.stages,
        "eval": any(s.startswith("eval_") or s == "features" for s in config.stages),
    }
    for section, required in needed.items():
        entries = getattr(config.tasks, section)
        expanded = expand_tasks(entries, known, f"tasks.{section}")
        setattr(config.tasks, section, expanded)
        if required and not expanded:
            raise ConfigError(f"tasks.{section}: empty, but the stages need it; list task names or `suite`.")
    if check_tasks:
        from lm_forget.data.api import resolve_task

        for section in ("finetune", "forget", "eval"):
            for name in getattr(config.tasks, section):
                try:
                    resolve_task(name, task_dirs=config.task_dir_paths)
                except ConfigError as exc:
                    raise ConfigError(f"tasks.{section}: {exc}") from None
    return config


def run_config_from_dict(data: dict[str, Any], *, base_dir: str | Path = ".", check_tasks: bool = True) -> RunConfig:
    """A validated RunConfig from a parsed YAML mapping."""
    config = _from_dict(RunConfig, data, "config")
    config.base_dir = str(Path(base_dir).resolve())
    return validate_config(config, check_tasks=check_tasks)


def load_run_config(path: str | Path, *, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a run config YAML; relative paths in it resolve against the current directory."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"run config {path} not found.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a run config is a mapping of sections, got {type(data).__name__}.")
    data.update(overrides or {})
    try:
        return run_config_from_dict(data, base_dir=Path.cwd())
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
