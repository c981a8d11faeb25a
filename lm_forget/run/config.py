"""The run config: one YAML file -> one validated ``RunConfig``, checked completely before any work starts.

Example (``configs/study/llama2_suite.yaml``)::

    run_dir: runs/llama2_suite
    model: {name_or_path: meta-llama/Llama-2-7b-hf}
    tasks: {finetune: [suite], forget: [suite], eval: [suite]}
    seeds: [0, 1, 2]
    forget: {method: random_labels, num_examples: [1000], learning_rate: 1.0e-4, lora_r: 16}

Loading is three steps: YAML (plus ``--set section.key=value`` overrides) -> the pydantic schema
(``run/schema.py``: types, unknown keys with did-you-mean; section validators return normalised values: task
patterns expanded by ``run/task_lists.py``, method aliases resolved) -> cross-field checks (``run/checks.py``),
which read the config and return a completed copy, never editing it.
Every failure is one ``ConfigError`` naming the key (``config.forget.learning_rate: ...``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from lm_forget.errors import ConfigError, unknown_key_message
from lm_forget.limits import check_value, load_yaml
from lm_forget.run.checks import (
    STAGE_NEEDS,
    validate_config,
    validate_stages,
)
from lm_forget.run.schema import (
    DEFAULT_STAGES,
    RELEARN_POOLS,
    SHORTHANDS,
    STAGES,
    AnalysisSettings,
    EvalSettings,
    ForgetSettings,
    MethodSpec,
    PushSettings,
    RelearnSettings,
    RunConfig,
    TaskSettings,
    TrainSettings,
)
from lm_forget.run.task_lists import expand_tasks

__all__ = [
    "DEFAULT_STAGES", "RELEARN_POOLS", "STAGES", "STAGE_NEEDS", "AnalysisSettings", "EvalSettings",
    "ForgetSettings", "MethodSpec", "PushSettings", "RelearnSettings", "RunConfig", "TaskSettings",
    "TrainSettings", "apply_set", "expand_tasks", "load_run_config",
    "run_config_from_dict", "validate_config", "validate_stages",
]


def _where(loc: tuple[Any, ...]) -> str:
    out = "config"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _find_model(annotation: Any) -> type[BaseModel] | None:
    """The schema model inside an annotation (``Section``, ``list[Annotated[Section, ...]]``, ``X | None``)."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The schema model that owns the key at ``loc`` (for the list of allowed keys)."""
    model: type[BaseModel] | None = RunConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return model
        model = _find_model(field.annotation)
    return model


def key_paths(key: str, model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """Every dotted path of the schema whose last part is ``key`` (``device`` -> ``["device"]``)."""
    paths = []
    for name, field in model.model_fields.items():
        if name == key:
            paths.append(prefix + name)
        inner = _find_model(field.annotation)
        if inner is not None and inner is not model:
            paths += key_paths(key, inner, f"{prefix}{name}.")
    return paths


def _elsewhere(key: str, section: str) -> str:
    """`` 'k' is a key of a.k, b.k.`` when other sections than ``section`` hold ``key``."""
    paths = [p for p in key_paths(key) if p != f"{section}.{key}".lstrip(".")]
    return f" {key!r} is a key of {', '.join(paths)}." if paths else ""


def config_error(exc: ValidationError) -> ConfigError:
    """pydantic's first error as one readable line: where, what, how to fix."""
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    if err["type"] == "extra_forbidden":
        owner = _model_at(loc[:-1])
        known = list(owner.model_fields) if owner else []
        section = ".".join(str(p) for p in loc[:-1] if not isinstance(p, int))
        return ConfigError(f"{_where(loc[:-1])}: {unknown_key_message(str(loc[-1]), known)}"
                           f"{_elsewhere(str(loc[-1]), section)}")
    message = str(err["msg"]).removeprefix("Value error, ")
    head, sep, rest = message.partition(": ")  # a section's own check names its key: "method: 'npo' is ..."
    owner = _model_at(loc)
    if sep and owner is not None and re.fullmatch(r"[a-z_]+(\[\d+\])?(\.[a-z_]+)*", head) \
            and (re.split(r"[\[.]", head)[0] in owner.model_fields or owner.model_config.get("extra") == "allow"):
        loc, message = (*loc, head), rest
    shown = f" (got {err['input']!r})" if err["type"] != "value_error" and not isinstance(err["input"], dict) else ""
    return ConfigError(f"{_where(loc)}: {message}{shown}.".replace("..", "."))


def run_config_from_dict(data: dict[str, Any], *, base_dir: str | Path = ".", check_tasks: bool = True) -> RunConfig:
    """A validated RunConfig from a parsed YAML mapping."""
    if not isinstance(data, dict):
        raise ConfigError(f"config: a run config is a mapping of sections, got {type(data).__name__}.")
    check_value(data, "config")
    base = str(Path(base_dir).resolve())
    try:
        config = RunConfig.model_validate(data, context={"base_dir": base})  # relative task_dirs resolve against it
    except ValidationError as exc:
        raise config_error(exc) from None
    config.base_dir = base
    return validate_config(config, check_tasks=check_tasks)


def apply_set(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``--set section.key=value`` to the parsed YAML (``value`` is YAML: ``3e-5``, ``[0, 1]``)."""
    import yaml

    path, sep, raw = assignment.partition("=")
    keys = [k for k in path.strip().split(".") if k]
    if not sep or not keys:
        raise ConfigError(f"--set {assignment!r}: write KEY=VALUE with a dotted key, e.g. "
                          "--set forget.learning_rate=3e-5")
    try:
        value = load_yaml(raw, f"--set {assignment!r}") if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {assignment!r}: the value is not valid YAML ({exc}).") from None
    node = data
    for i, key in enumerate(keys[:-1]):
        if i == 0 and key in SHORTHANDS and key in node:  # ``seeds: [0, 1]`` is ``seeds: {forget: [0, 1]}``
            node[key] = SHORTHANDS[key](node[key])
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment!r}: {'.'.join(keys[:i + 1])} is not a section.")
        node = child
    node[keys[-1]] = value


def load_run_config(path: str | Path, *, overrides: dict[str, Any] | None = None,
                    sets: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read and validate a run config YAML; relative paths in it resolve against the current directory.

    ``overrides`` replace top-level keys; ``sets`` are ``--set section.key=value`` assignments.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"run config {path} not found.")
    try:
        text = path.read_text(encoding="utf-8")
        data = load_yaml(text, str(path)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a run config is a mapping of sections, got {type(data).__name__}.")
    data.update(overrides or {})
    for assignment in sets:
        apply_set(data, assignment)
    try:
        config = run_config_from_dict(data, base_dir=Path.cwd())
    except ConfigError as exc:
        origin = f" (after --set {', '.join(sets)})" if sets else ""
        raise ConfigError(f"{path}{origin}: {exc}") from None
    _refuse_config_overwrite(path, text, config)
    config.source_file = str(path.resolve())
    return config


def _refuse_config_overwrite(path: Path, text: str, config: RunConfig) -> None:
    """A config file at ``run_dir/config.yaml`` would be replaced by the resolved dump: refuse unless it is one."""
    import yaml

    from lm_forget.formats import STUDY_CONFIG_FILE

    if path.resolve() != (config.run_path / STUDY_CONFIG_FILE).resolve():
        return
    if text == yaml.safe_dump(yaml.safe_load(text), sort_keys=False):
        return  # a resolved dump (no comments, canonical layout): rewriting it loses nothing
    raise ConfigError(f"{path} is the run dir's own {STUDY_CONFIG_FILE}, which the run replaces with the resolved "
                      "config (its comments and layout would be lost); nothing was written. Move the file out of "
                      "the run dir, or set another run_dir (--run-dir DIR).")
