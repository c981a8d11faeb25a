"""``uniform``: pull the model's two-choice distribution to uniform (maximum entropy) on the forget set.

The choice distribution is lm-eval's: p = softmax(s_0, s_1), with s_i the summed log-likelihood of choice i's
continuation. L = E_forget[KL(U || p)] = E[sum_i 1/2 log((1/2) / p_i)] = E[-log 2 - (log p_0 + log p_1) / 2],
which is 0 exactly when both choices score the same (the definition is the issue's; no paper is implied).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from lm_forget.train.methods.base import MethodTrainer, retain_nll
from lm_forget.train.methods.data import ALT, FORGET
from lm_forget.train.methods.registry import Method, register_method


def uniform_loss(logp: torch.Tensor, role: torch.Tensor, retain_weight: float = 0.0) -> torch.Tensor:
    """Mean KL(uniform || softmax(s_0, s_1)) over forget docs, + retain_weight x retain NLL."""
    scores = torch.stack([logp[role == FORGET], logp[role == ALT]], dim=-1)
    log_p = torch.log_softmax(scores, dim=-1)
    loss = (-math.log(2.0) - log_p.mean(dim=-1)).mean()
    return loss + retain_weight * retain_nll(logp, role) if retain_weight else loss


class UniformTrainer(MethodTrainer):
    def method_loss(self, inputs: dict[str, Any], outputs: Any) -> torch.Tensor:
        logp, _ = self.logprobs(inputs, outputs)
        return uniform_loss(logp, inputs["role"], self.retain_weight)


UNIFORM = register_method(Method(
    name="uniform",
    summary="KL(uniform over the two choices || the model's choice distribution) on the forget set.",
    trainer=UniformTrainer,
    retain="optional",
    both_choices=True,
))
