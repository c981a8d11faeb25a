"""The ``features`` step: hidden-state variance (and, for probe studies, probe) features of one model."""

from __future__ import annotations

from typing import Any

from lm_forget.io import atomic_dir
from lm_forget.run.graph import Step


def run_features(step: Step, ctx: Any) -> dict[str, Any]:
    """Hidden-state variance (and, for probe studies, probe) features of one model."""
    from lm_forget.analysis.api import extract_features

    config = ctx.config
    ref = ctx.ref_for(step)
    with atomic_dir(step.output) as tmp:
        # the ModelRef and the DataConfig whole: exactly the model, revision, tokenizer and docs the trainer used
        extract_features(ref, data=config.data, tasks=step.settings["tasks"], layer=step.settings["layer"],
                         out=tmp, split=step.settings["split"], task_dirs=[str(p) for p in config.task_dir_paths],
                         device=config.device, role=step.settings["phase"], limit=step.settings["limit"],
                         probes=step.settings.get("probes", False))
    return {"features": str(step.output / "features.json")}
