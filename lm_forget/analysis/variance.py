"""Total variance: trace of the covariance, across docs, of the hidden state at the prompt's last token.

Streaming in float64 with O(hidden) memory: only the per-dimension mean and sum of squared deviations
are kept, merged batch by batch with Chan et al.'s parallel update, so n x hidden is never stacked.
trace(cov) = sum over dimensions of the per-dimension variance (ddof=1, like ``numpy.cov``).
"""

from __future__ import annotations

import math

import numpy as np

from lm_forget.analysis.registry import Context, PredictorValues, register


class StreamingTrace:
    """Running trace of the sample covariance of rows fed in batches (float64, O(dim) memory)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, batch) -> None:
        """Add a (rows, dim) batch (numpy array or torch tensor)."""
        if hasattr(batch, "detach"):
            batch = batch.detach().to("cpu").double().numpy()
        x = np.asarray(batch, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            return
        nb = x.shape[0]
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        if self.mean is None:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        total = self.n + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (nb / total)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * nb / total)
        self.n = total

    @property
    def trace(self) -> float:
        """trace(cov) with ddof=1; NaN with fewer than two rows."""
        if self.n < 2 or self.m2 is None:
            return math.nan
        return float(self.m2.sum() / (self.n - 1))


def variance_context(doc: dict) -> str:
    """The text whose last token is "the question's last token": the prompt lm-eval scores.

    Multi-context docs (winogrande) have no shared question; their informational prompt (the source
    sentence) is used, else the first choice's context — never the gold one, which would leak the label.
    """
    from lm_forget.data.docs import is_multi_context, scoring_pair

    if not is_multi_context(doc):
        return doc["prompt"]
    return doc.get("prompt") or scoring_pair(doc, 0)[0]


def stream_variance(model, tokenizer, texts, *, layers: list[int], batch_size: int, padding_side: str = "right",
                    device: str = "cpu", progress: str | None = None) -> dict[int, StreamingTrace]:
    """One StreamingTrace per layer over ``texts``."""
    from lm_forget.analysis.hidden import last_token_states

    acc = {layer: StreamingTrace() for layer in layers}
    for states in last_token_states(model, tokenizer, texts, layers=layers, batch_size=batch_size,
                                    padding_side=padding_side, device=device, progress=progress):
        for layer, h in states.items():
            acc[layer].update(h)
    return acc


@register("variance")
def variance(ctx: Context) -> list[PredictorValues]:
    out = []
    for fs in ctx.feature_sets:
        if str(fs["role"]).startswith("forget"):
            continue  # the paper's variance describes the model before forgetting
        layer = str(fs["primary_layer"])
        values = {t: v["variance"].get(layer, math.nan) for t, v in fs["tasks"].items()}
        out.append(PredictorValues(
            name=f"variance_{fs['role']}", level="task",
            description=(f"trace of the covariance of the hidden state at the prompt's last token, "
                         f"hidden_states[{layer}], {fs['role']} model, {fs['split']} docs"),
            values=values, expected="low variance -> more forgetting"))
    return out
