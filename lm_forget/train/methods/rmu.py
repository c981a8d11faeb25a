"""``rmu``: Representation Misdirection for Unlearning.

Li et al. 2024, "The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning" (arXiv 2403.03218),
section 5: at layer l, push the forget docs' hidden states toward c * u (u a fixed random unit vector with
entries drawn uniformly from [0, 1), then normalized, as the paper states) and keep the retain docs' hidden
states at the frozen model's: L = mean ||h_l(x_f) - c u||^2 + alpha * mean ||h_l(x_r) - h_l^frozen(x_r)||^2
(mean over tokens and hidden dims, as their code's ``mse_loss``), updating only the parameters of the
configured layers (the paper: the MLPs of layers l-2, l-1, l). Tokens: every non-pad token of the
(context, continuation) sequences lm-eval scores. alpha is ``--retain_weight``.

Frozen model: the retain docs' layer-l states are computed once, up front, from the starting model and kept
on CPU (memory: retain tokens x hidden size x dtype bytes; 1,000 docs of 100 tokens at 4,096 dims in bf16 is
~0.8 GB), so no second copy of the model is held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lm_forget.data.hashing import stable_int
from lm_forget.errors import ConfigError
from lm_forget.train.methods.base import MethodTrainer
from lm_forget.train.methods.data import FORGET, RETAIN
from lm_forget.train.methods.registry import Method, register_method


@dataclass
class RMUParams:
    """Attributes:
    layer: layer whose output is steered (negative counts from the end; default: a quarter of the depth,
        as the paper's layer 7 of 32).
    update_layers: layers whose parameters train (default: layer-2 .. layer).
    update_modules: name fragments of the trained parameters within those layers (default: the MLP).
    steering_coeff: c, the norm of the target direction (paper: 6.5 for Zephyr-7B; model-dependent).
    """

    layer: int | None = None
    update_layers: list[int] | None = None
    update_modules: list[str] = field(default_factory=lambda: ["mlp"])
    steering_coeff: float = 6.5


def control_vector(hidden_size: int, coeff: float, seed: int) -> torch.Tensor:
    """c * u, u = U[0,1)^d normalized, from a generator seeded by a stable hash (never global RNG state)."""
    generator = torch.Generator().manual_seed(stable_int("rmu-direction", seed) % (2**63))
    u = torch.rand(hidden_size, generator=generator, dtype=torch.float64)
    return (coeff * u / u.norm()).float()


def masked_mse(h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked tokens and all hidden dims (float32)."""
    diff = (h.float() - target.float()) ** 2
    weight = mask.unsqueeze(-1).to(diff.dtype)
    return (diff * weight).sum() / (weight.sum() * h.shape[-1]).clamp(min=1)


def rmu_loss(hidden: torch.Tensor, attention_mask: torch.Tensor, role: torch.Tensor, control: torch.Tensor,
             frozen_retain: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """Forget states -> ``control`` (MSE) + alpha x MSE(retain states, frozen retain states)."""
    forget = role == FORGET
    loss = masked_mse(hidden[forget], control.to(hidden.device).expand_as(hidden[forget]), attention_mask[forget])
    if frozen_retain is not None and bool((role == RETAIN).any()):
        keep = role == RETAIN
        loss = loss + alpha * masked_mse(hidden[keep], frozen_retain, attention_mask[keep])
    return loss


class RMUTrainer(MethodTrainer):
    needs_hidden_states = True

    def prepare_reference(self) -> None:
        params: RMUParams = self.method_params
        n_layers = int(self.model.config.num_hidden_layers)
        layer = n_layers // 4 if params.layer is None else params.layer
        layer = layer + n_layers if layer < 0 else layer
        if not 0 <= layer < n_layers - 1:
            raise ConfigError(f"rmu: layer {params.layer} is outside 0..{n_layers - 2} for this {n_layers}-layer "
                              "model (the last layer's output is normed by the model; pick an earlier one)")
        self.layer = layer
        updated = params.update_layers or list(range(max(0, layer - 2), layer + 1))
        self._freeze_all_but(updated, params.update_modules)
        hidden_size = int(self.model.config.hidden_size)
        self.control = control_vector(hidden_size, params.steering_coeff, int(self.args.seed))
        self.frozen: dict[int, torch.Tensor] = {}

        def collect(batch: dict[str, Any], outputs: Any) -> None:
            states = outputs.hidden_states[self.layer + 1]
            keep = batch["role"] == RETAIN
            for r, h, m in zip(batch["retain_index"].tolist(), states[keep], batch["attention_mask"][keep],
                               strict=True):
                self.frozen.setdefault(r, h[: int(m.sum())].detach().cpu())

        self.reference_batches(collect)

    def _freeze_all_but(self, layers: list[int], modules: list[str]) -> None:
        kept = 0
        for name, param in self.model.named_parameters():
            if not param.requires_grad:
                continue
            trained = any(f"layers.{i}." in name for i in layers) and any(m in name for m in modules)
            param.requires_grad_(trained)
            kept += trained
        if not kept:
            raise ConfigError(f"rmu: no trainable parameter in layers {layers} matches {modules}; "
                              "check update_layers / update_modules in --method_args")

    def method_loss(self, inputs: dict[str, Any], outputs: Any) -> torch.Tensor:
        hidden = outputs.hidden_states[self.layer + 1]
        frozen = None
        if len(inputs["retain_index"]):
            width = hidden.shape[1]
            rows = [self.frozen[int(r)] for r in inputs["retain_index"].tolist()]
            frozen = torch.stack([torch.nn.functional.pad(h, (0, 0, 0, width - h.shape[0])) for h in rows])
            frozen = frozen.to(hidden.device)
        return rmu_loss(hidden, inputs["attention_mask"], inputs["role"], self.control, frozen, self.retain_weight)


RMU = register_method(Method(
    name="rmu",
    summary="Representation misdirection: forget states -> c*u at one layer, retain states kept (alpha * MSE).",
    params=RMUParams,
    trainer=RMUTrainer,
    retain="required",
    default_retain_weight=1200.0,
    reference="the starting model's layer-l states of the retain docs, computed once, kept on CPU",
))
