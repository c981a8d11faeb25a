"""Confidence predictor: probability of the correct choice relative to the distractor.

Per doc, ``p_gold = softmax(loglikelihoods)[label]`` over lm-eval's summed per-choice loglikelihoods
(from ``--log_samples``), for the pretrained and the fine-tuned model; per task, its mean.
"""

from __future__ import annotations

from lm_forget.analysis.registry import Context, PredictorValues, register

_PHASES = {"pretrained": "pretrained model", "finetuned": "fine-tuned model"}


@register("confidence")
def confidence(ctx: Context) -> list[PredictorValues]:
    out = []
    for phase, who in _PHASES.items():
        col = f"confidence_{phase}"
        out.append(PredictorValues(
            name=f"confidence_{phase}", level="task",
            description=f"mean P(correct vs distractor) of the {who} on the {ctx.options.split} docs",
            values=dict(zip(ctx.metrics["task"], ctx.metrics[col], strict=True)),
            expected="low confidence -> more forgetting"))
        out.append(PredictorValues(
            name=f"confidence_{phase}", level="example",
            description=f"P(correct vs distractor) of the {who}, per doc",
            values=ctx.joined[f"p_gold_{phase}"], expected="low confidence -> forgotten"))
    return out


def doc_confidence(logliks: list[float], label: int) -> float:
    """P(gold) under a softmax over the choices' loglikelihoods (re-exported for users)."""
    from lm_forget.analysis.samples import softmax_gold

    return softmax_gold(logliks, label)
