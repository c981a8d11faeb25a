"""Build settings of a forget task's docs."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

from lm_forget.errors import ConfigError, unknown_key_message

FORMAT_VERSION = 2  # bump when the doc format or the build procedure changes: invalidates caches


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None


def _whole(name: str, value: Any) -> int:
    """``value`` as an int: an int, an integral float (YAML ``1e3``) or a digit string (lm-eval metadata)."""
    if not isinstance(value, bool) and isinstance(value, numbers.Integral):
        return int(value)
    number = _number(name, value) if not isinstance(value, bool) else math.nan
    if not math.isfinite(number) or not number.is_integer():
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(number)


@dataclass(frozen=True)
class DataConfig:
    """How docs are sampled.

    Attributes:
        seed: data seed; with (task, source doc) it picks distractors, gold positions, carve-outs and
            samples. Independent of the training seed, so every training seed sees the same docs.
        train_size: size of the forget (training) pool; the paper uses 1,000 (and 100: the first 100).
        eval_size: size of the held-out evaluation split.
        carve_fraction: for sources without a training split, the share of the evaluation split moved
            into the forget pool (by stable hash of each doc).
    """

    seed: int = 0
    train_size: int = 1000
    eval_size: int = 1000
    carve_fraction: float = 0.5

    def __post_init__(self) -> None:
        for name in ("seed", "train_size", "eval_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                # seed=0.0 or True would hash as "0.0" / "True" and silently sample other docs than seed=0 / 1
                raise ConfigError(f"{name} must be a whole number (an int), got {value!r} "
                                  f"({type(value).__name__})")
        for name in ("train_size", "eval_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive number of docs, got {getattr(self, name)!r}")
        if not 0.0 < float(self.carve_fraction) < 1.0:
            raise ConfigError(f"carve_fraction must be between 0 and 1, got {self.carve_fraction!r}")

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> DataConfig:
        """Pick our fields out of arbitrary kwargs (lm-eval passes metadata and model args too)."""
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for name in known:
            if name in kwargs and kwargs[name] is not None:
                values[name] = float(_number(name, kwargs[name])) if name == "carve_fraction" else \
                    _whole(name, kwargs[name])
        return cls(**values)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, where: str = "data") -> DataConfig:
        """Strictly from a mapping (a config section): unknown keys are an error, with did-you-mean."""
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                raise ConfigError(f"{where}: {unknown_key_message(str(key), known)}")
        return cls.from_kwargs(data)

    def to_metadata(self) -> dict[str, Any]:
        """As lm-eval ``--metadata`` / YAML ``dataset_kwargs`` (flat, shared with model args: the seed is
        ``data_seed`` there, so it cannot be mistaken for a model or training seed)."""
        return {"data_seed": self.seed, "train_size": self.train_size, "eval_size": self.eval_size,
                "carve_fraction": self.carve_fraction}

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> DataConfig:
        """The inverse of ``to_metadata`` (other keys in ``metadata`` are lm-eval's or the loader's)."""
        picked = {k: metadata[k] for k in ("train_size", "eval_size", "carve_fraction") if k in metadata}
        if "data_seed" in metadata:
            picked["seed"] = metadata["data_seed"]
        return cls.from_kwargs(picked)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
