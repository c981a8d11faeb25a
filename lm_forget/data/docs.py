"""The binarized doc: its fields, and how lm-eval turns it into (context, continuation) pairs.

A doc is a plain dict::

    id              stable id, "<task>/<split>/<12 hex>" (hash of the source doc's content)
    task            suite task name, e.g. "forget_boolq"
    split           "train" (the forget pool) or "test" (held-out evaluation)
    prompt          the exact zero-shot context lm-eval scores (for multi-context tasks: the source
                    sentence, informational only)
    choices         two strings: continuations, or contexts for multi-context tasks (winogrande)
    label           0 or 1, index of the gold choice
    continuation    "" normally; for multi-context tasks the one continuation shared by both contexts
    target_delimiter  what lm-eval puts between context and continuation (" " for the whole suite)
    source_index    row of the doc in the source split (after the source task's process_docs)
    source_choices  all of the source's choices, in source order
    source_label    the gold index among ``source_choices``
    kept            indices into ``source_choices`` of ``choices`` (``kept[label] == source_label``)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DOC_FIELDS = (
    "id",
    "task",
    "split",
    "prompt",
    "choices",
    "label",
    "continuation",
    "target_delimiter",
    "source_index",
    "source_choices",
    "source_label",
    "kept",
)
SPLITS = ("train", "test")


def is_multi_context(doc: Mapping[str, Any]) -> bool:
    """True when the choices are contexts that share one continuation (winogrande-style scoring)."""
    return bool(doc.get("continuation"))


def scoring_pair(doc: Mapping[str, Any], choice: int) -> tuple[str, str]:
    """The (context, continuation) lm-eval scores for ``choice`` — the prompt/completion to train on.

    lm-eval scores ``loglikelihood(context, target_delimiter + answer)``; for multi-context docs the
    context varies and the continuation is shared.
    """
    if choice not in (0, 1):
        raise ValueError(f"choice must be 0 or 1, got {choice!r}")
    delimiter = doc.get("target_delimiter", " ")
    if is_multi_context(doc):
        return doc["choices"][choice], delimiter + doc["continuation"]
    return doc["prompt"], delimiter + doc["choices"][choice]


def gold_pair(doc: Mapping[str, Any]) -> tuple[str, str]:
    """The (context, continuation) of the gold answer."""
    return scoring_pair(doc, int(doc["label"]))
