"""``build_trainer``: the SFTTrainer (label rules) or MethodTrainer (losses) of one forget run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lm_forget.train.methods.data import MethodCollator, method_dataset, method_rows
from lm_forget.train.methods.registry import Method

if TYPE_CHECKING:
    from lm_forget.train.config import ForgetConfig


def build_method_trainer(config: ForgetConfig, method: Method, docs: Sequence[Mapping[str, Any]],
                         retain_docs: Sequence[Mapping[str, Any]], *, model: Any, tokenizer: Any,
                         peft_config: Any, callbacks: Sequence[Any] = ()) -> Any:
    """A ``method.trainer`` over ``docs`` (+ ``retain_docs``), with ``config``'s SFT settings."""
    assert method.trainer is not None, f"{method.name} is a label rule, not a loss"
    args = config.to_sft_config()
    rows = method_rows(docs, retain_docs, tokenizer, both_choices=method.both_choices, max_length=args.max_length)
    args.remove_unused_columns = False  # our collator needs alt_* / retain_* / index columns
    # the rows are final (tokenized and truncated as lm-eval scores them): TRL must not fold masks into labels
    args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    weight = method.retain_weight(config.retain_weight, bool(config.retain))
    return method.trainer(
        model=model,
        args=args,
        train_dataset=method_dataset(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
        data_collator=MethodCollator(pad),
        callbacks=list(callbacks) or None,
        method_params=method.parse_params(config.method_args),
        retain_weight=weight if retain_docs else 0.0,
    )
