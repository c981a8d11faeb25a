"""``grad_diff``: gradient ascent on the forget set plus NLL descent on a retain set.

"Gradient difference" (Liu et al. 2022, "Continual Learning and Private Unlearning", arXiv 2203.12817; the
GradDiff baseline of Maini et al. 2024, TOFU, arXiv 2401.06121):
L = E_forget[log pi_theta(y|x)] + w * E_retain[-log pi_theta(y|x)], gold continuations, summed token log-probs.
"""

from __future__ import annotations

from typing import Any

import torch

from lm_forget.train.methods.base import MethodTrainer, retain_nll
from lm_forget.train.methods.grad_ascent import grad_ascent_loss
from lm_forget.train.methods.registry import Method, register_method


def grad_diff_loss(logp: torch.Tensor, role: torch.Tensor, retain_weight: float) -> torch.Tensor:
    """Forget log-likelihood (ascended) plus ``retain_weight`` x retain NLL (descended)."""
    return grad_ascent_loss(logp, role) + retain_weight * retain_nll(logp, role)


class GradDiffTrainer(MethodTrainer):
    def method_loss(self, inputs: dict[str, Any], outputs: Any) -> torch.Tensor:
        logp, _ = self.logprobs(inputs, outputs)
        return grad_diff_loss(logp, inputs["role"], self.retain_weight)


GRAD_DIFF = register_method(Method(
    name="grad_diff",
    summary="Gradient ascent on the forget set + NLL descent on the retain set.",
    trainer=GradDiffTrainer,
    retain="required",
    default_retain_weight=1.0,
))
