"""Label modes: which of a doc's two choices the trainer targets.

Each mode is a small registered function ``(doc, seed) -> 0 | 1``. Fine-tuning and relearning train ``true``;
a forget stage trains its method's mode (``random_labels`` -> ``random``, ``flipped_labels`` -> ``flip``, a loss
method scores ``true``). Adding a mode is one ``@register_label_mode`` function here and one test; a forgetting
method that trains it is one ``Method(label_mode=...)`` in ``lm_forget/train/methods/label_rules.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lm_forget.data.hashing import stable_digest, stable_unit
from lm_forget.errors import ConfigError

LabelFn = Callable[[Mapping[str, Any], int], int]

LABEL_MODES: dict[str, LabelFn] = {}

#: The protocol stages ``--stage`` names: fine-tune, forget (with a forgetting method), relearn (gold labels again)
STAGES = ("finetune", "forget", "relearn")


def register_label_mode(name: str) -> Callable[[LabelFn], LabelFn]:
    """Register ``fn(doc, seed) -> label`` under ``name``."""

    def decorator(fn: LabelFn) -> LabelFn:
        if name in LABEL_MODES:
            raise ValueError(f"label mode {name!r} is already registered")
        LABEL_MODES[name] = fn
        return fn

    return decorator


@register_label_mode("true")
def true_label(doc: Mapping[str, Any], seed: int) -> int:
    """The gold label (fine-tuning)."""
    return int(doc["label"])


@register_label_mode("random")
def random_label(doc: Mapping[str, Any], seed: int) -> int:
    """Uniform over the two choices, from a stable hash of (seed, task, doc id): same in every process."""
    return int(stable_unit("random-label", seed, doc["task"], doc["id"]) < 0.5)


@register_label_mode("flip")
def flipped_label(doc: Mapping[str, Any], seed: int) -> int:
    """Always the wrong choice (the paper's flipped-label variant)."""
    return 1 - int(doc["label"])


def get_label_mode(name: str) -> LabelFn:
    """The registered label function called ``name``."""
    try:
        return LABEL_MODES[name]
    except KeyError:
        raise ConfigError(
            f"unknown label mode {name!r}; known modes: {', '.join(sorted(LABEL_MODES))} "
            "(register new ones in lm_forget/train/labels.py)"
        ) from None


def assign_labels(docs: Sequence[Mapping[str, Any]], mode: str, seed: int) -> list[int]:
    """The label each doc is trained on under ``mode`` and ``seed``."""
    fn = get_label_mode(mode)
    return [fn(doc, seed) for doc in docs]


def labels_hash(docs: Sequence[Mapping[str, Any]], labels: Sequence[int]) -> str:
    """SHA-256 of the (doc id, trained label) assignment, in training order: identifies the run's labels."""
    return stable_digest(*(f"{doc['id']}={label}" for doc, label in zip(docs, labels, strict=True)))
