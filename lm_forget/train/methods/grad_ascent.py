"""``grad_ascent``: ascend the NLL of the gold answer on the forget set.

The classic unlearning baseline (e.g. Jang et al. 2023, "Knowledge Unlearning for Mitigating Privacy Risks in
Language Models", arXiv 2210.01504; the GA baseline of Maini et al. 2024, TOFU, arXiv 2401.06121):
L = E_forget[log pi_theta(y|x)] = -E_forget[NLL(y|x)], with y the gold continuation and log pi_theta(y|x) its
summed token log-probability, exactly as lm-eval scores it. Unbounded below: stop by steps/epochs.
"""

from __future__ import annotations

from typing import Any

import torch

from lm_forget.train.methods.base import MethodTrainer
from lm_forget.train.methods.data import FORGET
from lm_forget.train.methods.registry import Method, register_method


def grad_ascent_loss(logp: torch.Tensor, role: torch.Tensor) -> torch.Tensor:
    """Mean gold log-likelihood of the forget docs (minimizing it ascends their NLL)."""
    return logp[role == FORGET].mean()


class GradAscentTrainer(MethodTrainer):
    def method_loss(self, inputs: dict[str, Any], outputs: Any) -> torch.Tensor:
        logp, _ = self.logprobs(inputs, outputs)
        return grad_ascent_loss(logp, inputs["role"])


GRAD_ASCENT = register_method(Method(
    name="grad_ascent",
    summary="Gradient ascent on the gold answer's NLL over the forget set.",
    trainer=GradAscentTrainer,
))
