"""``MethodTrainer``: an ``SFTTrainer`` whose ``compute_loss`` is a forgetting method's loss.

One forward pass per batch over the forget, alternative-choice and retain sequences the collator packed together;
subclasses turn its outputs into a loss (``method_loss``). The loss is a mean over the batch's docs, so the
Trainer's gradient-accumulation scaling and accelerate's per-process batches apply unchanged. Frozen references
(NPO's log-probs, RMU's retain hidden states) are computed once, up front, from the starting model
(``prepare_reference``), before any checkpoint is loaded, so a resumed run uses the same reference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from trl import SFTTrainer

from lm_forget.errors import ConfigError
from lm_forget.train.methods.data import RETAIN


def sequence_logprobs(logits: torch.Tensor, input_ids: torch.Tensor,
                      completion_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-prob of each sequence's completion tokens, their count): lm-eval's loglikelihood.

    Computed in at least float32 (bf16/fp16 logits are upcast), only at the completion positions.
    """
    mask = completion_mask[:, 1:].bool()
    rows, cols = mask.nonzero(as_tuple=True)
    picked = logits[:, :-1][rows, cols]
    picked = picked.to(torch.promote_types(picked.dtype, torch.float32))
    token_logp = -F.cross_entropy(picked, input_ids[:, 1:][rows, cols],
                                  reduction="none")
    total = torch.zeros(logits.shape[0], dtype=token_logp.dtype, device=logits.device).index_add(0, rows, token_logp)
    return total, mask.sum(dim=1)


def retain_nll(logp: torch.Tensor, role: torch.Tensor) -> torch.Tensor:
    """Mean NLL of the batch's retain docs (0 when the batch has none)."""
    retained = logp[role == RETAIN]
    return -retained.mean() if retained.numel() else logp.new_zeros(())


class MethodTrainer(SFTTrainer):
    """SFTTrainer with a method's loss; ``method_params`` is the method's params dataclass."""

    #: forward with ``output_hidden_states`` (representation methods)
    needs_hidden_states = False

    def __init__(self, *args: Any, method_params: Any, retain_weight: float, **kwargs: Any) -> None:
        self.method_params = method_params
        self.retain_weight = float(retain_weight)
        super().__init__(*args, **kwargs)
        # our loss is already a per-batch mean: let the Trainer divide it for gradient accumulation
        self.model_accepts_loss_kwargs = False
        self.prepare_reference()

    def prepare_reference(self) -> None:
        """Compute what the loss needs from the frozen starting model (default: nothing)."""

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        outputs = self.forward(model, inputs)
        loss = self.method_loss(inputs, outputs)
        return (loss, outputs) if return_outputs else loss

    def forward(self, model: Any, inputs: dict[str, Any]) -> Any:
        return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                     output_hidden_states=self.needs_hidden_states, use_cache=False)

    def method_loss(self, inputs: dict[str, Any], outputs: Any) -> torch.Tensor:
        raise NotImplementedError

    def logprobs(self, inputs: dict[str, Any], outputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return sequence_logprobs(outputs.logits, inputs["input_ids"], inputs["completion_mask"])

    def reference_batches(self, collect: Callable[[dict[str, Any], Any], None]) -> None:
        """Run the starting model over the whole training set once (eval mode, no grad), in row order."""
        if self.is_fsdp_enabled or (self.is_deepspeed_enabled and _zero3(self)):
            raise ConfigError("this method computes its reference up front, before FSDP / DeepSpeed ZeRO-3 shard "
                              "the model; use DDP or ZeRO-1/2 (accelerate config) for it")
        model = self.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for batch in self._reference_loader():
                    collect(batch, self.forward(model, batch))
        finally:
            model.train(was_training)

    def _reference_loader(self) -> Iterator[dict[str, Any]]:
        dataset = self.train_dataset
        size = max(1, int(self.args.per_device_eval_batch_size))
        device = next(self.model.parameters()).device
        if device.type == "cpu" and self.args.device.type != "cpu":
            self.model.to(self.args.device)
            device = self.args.device
        for start in range(0, len(dataset), size):
            batch = self.data_collator([dataset[i] for i in range(start, min(start + size, len(dataset)))])
            yield {k: v.to(device) for k, v in batch.items()}


def _zero3(trainer: Any) -> bool:
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    return bool(plugin) and int(getattr(plugin, "zero_stage", 0) or 0) == 3
