"""The forgetting-method registry: one ``Method`` per name, validated by ``--method`` and the run config.

A method is either a *label rule* (train the ordinary SFT loss on relabelled docs: ``random_labels``,
``flipped_labels``) or a *loss* (a ``MethodTrainer`` subclass overriding ``compute_loss``). Each lives in its
own module of this package and registers itself on import; adding one touches one file and one test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lm_forget.errors import ConfigError
from lm_forget.limits import check_value, load_json


@dataclass
class NoParams:
    """A method without hyper-parameters of its own."""


@dataclass(frozen=True)
class Method:
    """One registered forgetting method.

    Attributes:
        name: registry name (``--method NAME``).
        summary: one line for ``--help`` and docs.
        params: dataclass of the method's own hyper-parameters (``--method_args '{"beta": 0.1}'``).
        label_mode: for label rules, the ``lm_forget.train.labels`` mode trained with plain SFT.
        trainer: for loss methods, the ``MethodTrainer`` subclass that computes the loss.
        retain: ``"none"``, ``"optional"`` (used when the retain weight is > 0) or ``"required"``.
        default_retain_weight: retain-term weight when ``--retain_weight`` is not given.
        both_choices: the loss needs both choices' continuations (not only the trained label's).
        reference: what frozen reference it needs, in words (``""``: none).
    """

    name: str
    summary: str
    params: type = NoParams
    label_mode: str | None = None
    trainer: type | None = None
    retain: str = "none"
    default_retain_weight: float = 0.0
    both_choices: bool = False
    reference: str = ""

    @property
    def is_label_rule(self) -> bool:
        return self.label_mode is not None

    def retain_weight(self, weight: float | None, explicit_retain: bool = False) -> float:
        """The retain-term weight for ``--retain_weight`` (None: default; 1.0 when ``--retain`` names tasks)."""
        if self.retain == "none":
            return 0.0
        if weight is not None:
            return float(weight)
        return 1.0 if explicit_retain and not self.default_retain_weight else self.default_retain_weight

    def uses_retain(self, weight: float | None, explicit_retain: bool = False) -> bool:
        """Whether a run with these settings trains on a retain set."""
        return self.retain == "required" or (self.retain != "none" and
                                              self.retain_weight(weight, explicit_retain) > 0)

    def parse_params(self, raw: Mapping[str, Any] | str | None) -> Any:
        """The method's params dataclass from ``--method_args`` (a mapping or a JSON object string)."""
        if raw is None or raw == "":
            raw = {}
        if isinstance(raw, str):
            try:
                raw = load_json(raw, "--method_args")
            except ValueError as exc:
                raise ConfigError(f"--method_args {raw!r} is not a JSON object: {exc}") from None
        if not isinstance(raw, Mapping):
            raise ConfigError(f"--method_args must be a mapping, got {type(raw).__name__}")
        check_value(dict(raw), "--method_args")
        known = {f.name for f in dataclasses.fields(self.params)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"--method_args: {unknown} are not parameters of method {self.name!r}; "
                f"its parameters: {sorted(known) or 'none'} (see docs/methods.md)"
            )
        try:
            return self.params(**dict(raw))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--method_args for {self.name!r}: {exc}") from None


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add ``method`` to the registry."""
    if method.name in METHODS:
        raise ValueError(f"forgetting method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def method_names() -> list[str]:
    """Registered names, in registration order."""
    _load_all()
    return list(METHODS)


def get_method(name: str) -> Method:
    """The method called ``name``; ConfigError naming the known ones (and the closest) otherwise."""
    from lm_forget.errors import did_you_mean

    _load_all()
    if name not in METHODS:
        raise ConfigError(
            f"unknown forgetting method {name!r}.{did_you_mean(name, list(METHODS))} Known: {', '.join(METHODS)}. "
            "New methods go in lm_forget/train/methods/"
        )
    return METHODS[name]


#: the built-in method modules, in the order ``--help`` and docs list them; each registers itself on import
MODULES = ("label_rules", "uniform", "grad_ascent", "grad_diff", "npo", "simnpo", "rmu")


def _load_all() -> None:
    """Import the built-in method modules (in listing order), then every other module of this package, so a new
    method is one file here: its module registers it, nothing lists it."""
    from lm_forget.discovery import import_modules

    import_modules("lm_forget.train.methods", first=MODULES, skip={"registry"})
