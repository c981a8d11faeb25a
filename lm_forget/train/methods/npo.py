"""``npo``: Negative Preference Optimization against the fine-tuned model.

Zhang, Lin, Bai & Mei 2024, "Negative Preference Optimization: From Catastrophic Collapse to Effective
Unlearning" (arXiv 2404.05868), eq. (3): L_NPO = (2/beta) E_forget[log(1 + (pi_theta(y|x) / pi_ref(y|x))^beta)]
= -(2/beta) E[log sigmoid(-beta (log pi_theta(y|x) - log pi_ref(y|x)))], optionally + w * E_retain[NLL] (their
NPO-RT). y is the gold continuation, log pi its summed token log-prob as lm-eval scores it.

Reference: the model this run starts from (the fine-tuned adapter or weights). Its log-probs are computed once,
up front, in eval mode without grad: one float per forget doc, no second copy of the model in memory (with LoRA
the base with the adapter disabled would be the *pretrained* model, not the fine-tuned reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from lm_forget.train.methods.base import MethodTrainer, retain_nll
from lm_forget.train.methods.data import FORGET
from lm_forget.train.methods.registry import Method, register_method


@dataclass
class NPOParams:
    """Attributes:
    beta: inverse temperature (the paper's default 0.1); beta -> 0 recovers gradient ascent.
    """

    beta: float = 0.1

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")


def npo_loss(logp: torch.Tensor, ref_logp: torch.Tensor, role: torch.Tensor, beta: float,
             retain_weight: float = 0.0) -> torch.Tensor:
    """(2/beta) mean softplus(beta (logp - ref_logp)) over forget docs, + retain_weight x retain NLL."""
    forget = logp[role == FORGET]
    loss = (2.0 / beta) * F.softplus(beta * (forget - ref_logp)).mean()
    return loss + retain_weight * retain_nll(logp, role) if retain_weight else loss


class NPOTrainer(MethodTrainer):
    def prepare_reference(self) -> None:
        table = torch.zeros(len(self.train_dataset), dtype=torch.float64)

        def collect(batch: dict[str, Any], outputs: Any) -> None:
            logp, _ = self.logprobs(batch, outputs)
            table[batch["index"].cpu()] = logp[batch["role"] == FORGET].double().cpu()

        self.reference_batches(collect)
        self.ref_logp = table

    def method_loss(self, inputs: dict[str, Any], outputs: Any) -> torch.Tensor:
        logp, _ = self.logprobs(inputs, outputs)
        ref = self.ref_logp[inputs["index"].cpu()].to(device=logp.device, dtype=logp.dtype)
        return npo_loss(logp, ref, inputs["role"], self.method_params.beta, self.retain_weight)


NPO = register_method(Method(
    name="npo",
    summary="Negative Preference Optimization with the fine-tuned model as reference (+ optional retain NLL).",
    params=NPOParams,
    trainer=NPOTrainer,
    retain="optional",
    reference="log-probs of the starting (fine-tuned) model, computed once: one float per forget doc",
))
