"""Difficulty predictor: the task's accuracy before forgetting (fine-tuned; also pretrained)."""

from __future__ import annotations

from lm_forget.analysis.registry import Context, PredictorValues, register


@register("difficulty")
def difficulty(ctx: Context) -> list[PredictorValues]:
    return [
        PredictorValues(
            name=f"accuracy_{phase}", level="task",
            description=f"{phase} accuracy on the {ctx.options.split} docs (difficulty = low accuracy)",
            values=dict(zip(ctx.metrics["task"], ctx.metrics[f"acc_{phase}"], strict=True)),
            expected="difficulty does not predict forgetting")
        for phase in ("finetuned", "pretrained")
    ]
