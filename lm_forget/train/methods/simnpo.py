"""``simnpo``: reference-free, length-normalized NPO.

Fan, Liu, Lin, Jia, Zhang, Mei & Liu 2024, "Simplicity Prevails: Rethinking Negative Preference Optimization for
LLM Unlearning" (arXiv 2410.07163), eq. (4):
L = -(2/beta) E_forget[log sigmoid(-(beta/|y|) log pi_theta(y|x) - gamma)] (+ w * E_retain[NLL]),
with |y| the number of continuation tokens and log pi_theta(y|x) their summed log-prob (lm-eval's score).
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
class SimNPOParams:
    """Attributes:
    beta: inverse temperature (the paper uses 2.5 on TOFU).
    gamma: reward margin (the paper's default 0).
    """

    beta: float = 2.5
    gamma: float = 0.0

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")


def simnpo_loss(logp: torch.Tensor, ntok: torch.Tensor, role: torch.Tensor, beta: float, gamma: float,
                retain_weight: float = 0.0) -> torch.Tensor:
    """-(2/beta) mean logsigmoid(-(beta/|y|) logp - gamma) over forget docs, + retain_weight x retain NLL."""
    forget = role == FORGET
    margin = -(beta / ntok[forget].to(logp.dtype)) * logp[forget] - gamma
    loss = -(2.0 / beta) * F.logsigmoid(margin).mean()
    return loss + retain_weight * retain_nll(logp, role) if retain_weight else loss


class SimNPOTrainer(MethodTrainer):
    def method_loss(self, inputs: dict[str, Any], outputs: Any) -> torch.Tensor:
        logp, ntok = self.logprobs(inputs, outputs)
        params = self.method_params
        return simnpo_loss(logp, ntok, inputs["role"], params.beta, params.gamma, self.retain_weight)


SIMNPO = register_method(Method(
    name="simnpo",
    summary="Reference-free, length-normalized NPO (+ optional retain NLL).",
    params=SimNPOParams,
    trainer=SimNPOTrainer,
    retain="optional",
))
