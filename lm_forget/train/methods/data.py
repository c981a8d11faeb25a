"""Training rows of the loss methods: each forget doc's scored (context, continuation) tokens, plus a retain doc.

Built on ``lm_forget.train.dataset.encode_pair`` (lm-eval HFLM tokenization, answer tokens masked in), so every
loss sees exactly the tokens lm-eval scores. One row per forget doc (epochs and steps mean what they mean for
``random_labels``); the retain docs are paired with forget docs in order, cycling when there are fewer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lm_forget.data.docs import scoring_pair
from lm_forget.errors import DataError
from lm_forget.train.dataset import encode_pair

if TYPE_CHECKING:
    from datasets import Dataset

#: ``role`` of each sequence in a collated batch
FORGET, ALT, RETAIN = 0, 1, 2


def _tokens(tokenizer: Any, doc: Mapping[str, Any], choice: int,
            max_length: int | None = None) -> tuple[list[int], list[int]]:
    context, continuation = scoring_pair(doc, choice)
    if not context:
        raise DataError(f"doc {doc['id']} has an empty prompt; lm-eval cannot score it either")
    context_ids, continuation_ids = encode_pair(tokenizer, context, continuation)
    if not continuation_ids:
        raise DataError(f"doc {doc['id']}: the continuation {continuation!r} encodes to no tokens")
    ids, mask = context_ids + continuation_ids, [0] * len(context_ids) + [1] * len(continuation_ids)
    if max_length and len(ids) > max_length:  # as lm-eval's HFLM: drop context from the left, keep the answer
        if len(continuation_ids) >= max_length:
            raise DataError(f"doc {doc['id']}: its answer alone is {len(continuation_ids)} tokens, over "
                            f"--max_length {max_length}; raise --max_length")
        ids, mask = ids[-max_length:], mask[-max_length:]
    return ids, mask


def method_rows(forget_docs: Sequence[Mapping[str, Any]], retain_docs: Sequence[Mapping[str, Any]],
                tokenizer: Any, *, both_choices: bool, max_length: int | None = None) -> list[dict[str, Any]]:
    """One row per forget doc: gold (or, with ``both_choices``, choice 0 and choice 1) and its retain doc.

    Sequences over ``max_length`` lose context tokens from the left, as lm-eval truncates what it scores.
    """
    retain = [_tokens(tokenizer, doc, int(doc["label"]), max_length) for doc in retain_docs]
    rows = []
    for index, doc in enumerate(forget_docs):
        first = _tokens(tokenizer, doc, 0 if both_choices else int(doc["label"]), max_length)
        alt = _tokens(tokenizer, doc, 1, max_length) if both_choices else ([], [])
        r = index % len(retain) if retain else -1
        kept = retain[r] if retain else ([], [])
        rows.append({"index": index, "input_ids": first[0], "completion_mask": first[1],
                     "alt_input_ids": alt[0], "alt_completion_mask": alt[1], "retain_index": r,
                     "retain_input_ids": kept[0], "retain_completion_mask": kept[1]})
    return rows


def method_dataset(rows: Sequence[Mapping[str, Any]]) -> Dataset:
    """The rows as a ``datasets.Dataset`` (complete: train it with ``skip_prepare_dataset``)."""
    from datasets import Dataset

    return Dataset.from_list(list(rows))


class MethodCollator:
    """Pads a batch's forget, alternative-choice and retain sequences into one tensor (one forward pass).

    Output: ``input_ids``/``attention_mask``/``completion_mask`` ``[S, T]`` (right-padded), ``role`` ``[S]``
    (FORGET / ALT / RETAIN), ``index`` (forget row ids) and ``retain_index`` (retain doc ids) of the batch.
    """

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = int(pad_token_id)

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        seqs: list[tuple[list[int], list[int], int]] = []
        for prefix, role in (("", FORGET), ("alt_", ALT), ("retain_", RETAIN)):
            seqs += [(f[f"{prefix}input_ids"], f[f"{prefix}completion_mask"], role)
                     for f in features if f[f"{prefix}input_ids"]]
        width = max(len(ids) for ids, _, _ in seqs)
        input_ids = torch.full((len(seqs), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(seqs), width), dtype=torch.long)
        completion = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, (ids, mask, _) in enumerate(seqs):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
            completion[row, : len(ids)] = torch.tensor(mask)
        return {
            "input_ids": input_ids,
            "attention_mask": attention,
            "completion_mask": completion,
            "role": torch.tensor([role for _, _, role in seqs], dtype=torch.long),
            "index": torch.tensor([int(f["index"]) for f in features], dtype=torch.long),
            "retain_index": torch.tensor([int(f["retain_index"]) for f in features if f["retain_input_ids"]],
                                         dtype=torch.long),
        }
