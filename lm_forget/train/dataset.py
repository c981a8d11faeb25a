"""The training set: forget-pool docs -> (prompt, completion) pairs -> token ids with a completion mask.

The pairs come from ``lm_forget.data.docs.scoring_pair``, so the trainer targets exactly the
continuation lm-eval scores. Tokenization follows lm-eval's ``_encode_pair`` for causal models
(encode context+continuation, split at the length of the encoded context, trailing context
whitespace moved into the continuation) and adds no EOS: TRL's own prompt-completion tokenization
would append one, training a token lm-eval never scores (see docs/training.md).

Examples longer than the token limit (``max_length``, capped at the model's positions) are truncated
the way lm-eval's HFLM scores them: the context loses tokens from the *left*, the continuation is kept
whole. lm-eval at ``max_length=M`` scores the window ``(context + continuation)[-(M + 1):]``, so a
training sequence truncated to ``L`` tokens is exactly lm-eval's window at ``M = L - 1``. Every
truncated example is still trained on and counted (``truncated_tokens`` on its row, the log, and
``forget_config.json``); none is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lm_forget.data.docs import scoring_pair
from lm_forget.errors import ConfigError, DataError

if TYPE_CHECKING:
    from datasets import Dataset

    from lm_forget.train.config import ForgetConfig

logger = logging.getLogger(__name__)


def load_forget_docs(config: ForgetConfig) -> list[dict[str, Any]]:
    """The first ``num_examples`` docs of each task's training pool, tasks in the order given."""
    from pathlib import Path

    from lm_forget.data.api import load_docs

    docs: list[dict[str, Any]] = []
    for task in config.tasks:
        try:
            pool = load_docs(
                task,
                "train",
                task_dirs=[Path(d) for d in config.task_dirs],
                data=config.data_config,
            )
        except KeyError as exc:  # defensive: the data layer should raise ConfigError itself
            raise ConfigError(f"unknown task {task!r}: {exc}. List tasks with `lm-forget tasks`.") from exc
        if not pool:
            raise DataError(f"task {task!r} has no training docs; check its source data or mirror")
        if len(pool) < config.num_examples:
            logger.warning("%s: only %d training docs, fewer than --num_examples %d", task, len(pool),
                           config.num_examples)
        docs.extend(pool[: config.num_examples])
    return docs


def build_examples(docs: Sequence[Mapping[str, Any]], labels: Sequence[int]) -> list[dict[str, Any]]:
    """One TRL prompt-completion row per doc, for the label it is trained on."""
    rows = []
    for doc, label in zip(docs, labels, strict=True):
        prompt, completion = scoring_pair(doc, label)
        rows.append(
            {
                "id": doc["id"],
                "task": doc["task"],
                "gold": int(doc["label"]),
                "label": int(label),
                "prompt": prompt,
                "completion": completion,
            }
        )
    return rows


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) exactly as lm-eval's HFLM encodes them (default ``add_bos_token``)."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = _encode(tokenizer, context + continuation)
    context_ids = _encode(tokenizer, context)
    return context_ids, whole[len(context_ids) :]


def _encode(tokenizer: Any, text: str) -> list[int]:
    # lm-eval's tok_encode: tokenizer defaults, except no second BOS when the text already starts with one
    bos = getattr(tokenizer, "bos_token", None)
    kwargs = {"add_special_tokens": False} if bos and text.startswith(bos) else {}
    return list(tokenizer.encode(text, **kwargs))


#: model config attributes that bound the sequence length, in lm-eval HFLM's order
_POSITION_ATTRS = ("n_positions", "max_position_embeddings", "n_ctx")


def max_tokens(max_length: int | None, model: Any) -> int | None:
    """The training token limit: ``max_length`` capped at the model's positions (None: no limit known)."""
    model_config = getattr(model, "config", None)
    positions = next((getattr(model_config, a) for a in _POSITION_ATTRS if getattr(model_config, a, None)), None)
    limits = [int(n) for n in (max_length, positions) if n]
    return min(limits) if limits else None


def tokenize_examples(rows: Sequence[Mapping[str, Any]], tokenizer: Any,
                      max_length: int | None = None) -> list[dict[str, list[int]]]:
    """``input_ids`` + ``completion_mask`` per row; SFTTrainer turns the mask into loss labels.

    Over ``max_length`` tokens, the context is cut from the left (lm-eval's rule) and the row (a dict)
    gets ``truncated_tokens``; an answer that alone fills ``max_length`` is a DataError.
    """
    out = []
    truncated = dropped = 0
    for row in rows:
        if not row["prompt"]:
            raise DataError(f"doc {row['id']} has an empty prompt; lm-eval cannot score it either")
        context_ids, continuation_ids = encode_pair(tokenizer, row["prompt"], row["completion"])
        if not continuation_ids:
            raise DataError(f"doc {row['id']}: the completion {row['completion']!r} encodes to no tokens")
        if max_length is not None and len(context_ids) + len(continuation_ids) > max_length:
            room = max_length - len(continuation_ids)
            if room < 1:
                raise DataError(
                    f"doc {row['id']}: its answer alone is {len(continuation_ids)} tokens, leaving no room for "
                    f"the prompt within max_length {max_length}; raise --max_length (the model allows "
                    "more?) or train on another task"
                )
            cut = len(context_ids) - room
            context_ids = context_ids[cut:]
            truncated, dropped = truncated + 1, dropped + cut
            if isinstance(row, dict):
                row["truncated_tokens"] = cut
        out.append(
            {
                "input_ids": context_ids + continuation_ids,
                "completion_mask": [0] * len(context_ids) + [1] * len(continuation_ids),
            }
        )
    if truncated:
        logger.warning(
            "%d of %d training examples are longer than %d tokens: their prompts were truncated from the left "
            "as lm-eval scores them (%d prompt tokens in all); all are trained on", truncated, len(out),
            max_length, dropped,
        )
    return out


def to_sft_dataset(rows: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int | None = None) -> Dataset:
    """A ``datasets.Dataset`` SFTTrainer accepts as already processed (no re-tokenization, no EOS)."""
    from datasets import Dataset

    return Dataset.from_list(tokenize_examples(rows, tokenizer, max_length))
