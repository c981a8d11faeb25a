"""The study-feature registry: each run/<feature>_steps.py module registers its steps and checks, and the plan and
the config checks call every registered feature."""

from __future__ import annotations

import pytest

from lm_forget.errors import ConfigError
from lm_forget.run import build_plan, run_config_from_dict
from lm_forget.run.study_features import (
    FEATURES,
    PlanContext,
    ScoredModel,
    StudyFeature,
    register_feature,
    registered_features,
)


def _config(tmp_path, **extra):
    return {
        "model": {"name_or_path": "some/model"}, "run_dir": str(tmp_path / "run"),
        "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola"], "eval": ["forget_cola"]},
        "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "analyze"],
        "forget": {"num_examples": [100]}, **extra}


def test_every_study_feature_registers_itself_in_hook_order():
    assert [f.name for f in registered_features()] == ["forget_set", "utility", "relearn", "deep"]
    assert {f.name: f.kinds for f in registered_features()}["deep"] == ("mia", "quantized")


def test_a_registered_feature_adds_its_steps_and_runs_its_checks(tmp_path):
    """A new feature is one register_feature call: its steps join the plan at its hooks, its checks run."""
    checked, scored = [], []

    def at_model(ctx: PlanContext, target: ScoredModel) -> None:
        scored.append((target.phase, target.deps, target.cell and target.cell.id))
        if target.phase == "forget":
            ctx.add(f"planted/{target.cell.id}", "eval", "eval_forget", {"phase": "planted"}, target.deps,
                    cell=target.cell, folder="planted")

    def after_forget(ctx: PlanContext) -> None:
        ctx.add("planted_probe", "planted", "eval_forget", {"cells": [c.id for c in ctx.cells]})

    def check(config) -> None:
        checked.append(config.forget.num_examples)
        if 13 in config.forget.num_examples:
            raise ConfigError("forget.num_examples: 13 is unlucky for the planted feature.")

    register_feature(StudyFeature("planted", order=25, at_model=at_model, after_forget=after_forget, check=check,
                                  kinds=("planted",)))
    try:
        with pytest.raises(ValueError, match="registered twice"):
            register_feature(StudyFeature("planted", order=25, check=lambda config: None))
        assert [f.name for f in registered_features()] == ["forget_set", "utility", "planted", "relearn", "deep"]
        plan = build_plan(run_config_from_dict(_config(tmp_path)))
        with pytest.raises(ConfigError, match="13 is unlucky"):
            run_config_from_dict(_config(tmp_path, forget={"num_examples": [13]}))
    finally:
        FEATURES.pop("planted")
    assert checked == [[100], [13]]
    assert scored == [("pretrained", (), None), ("finetuned", ("finetune",), None),
                      ("forget", ("forget/forget_cola/n100/s0",), "forget_cola/n100/s0")]
    names = [s.name for s in plan.steps]
    # right after the cell's held-out eval and the features before it (forget-set evals follow all cells)
    assert names.index("planted/forget_cola/n100/s0") == names.index("eval_forget/forget_cola/n100/s0") + 1
    planted = plan.step("planted/forget_cola/n100/s0")
    assert planted.deps == ("forget/forget_cola/n100/s0",) and planted.dir.parent.name == "planted"
    assert plan.step("planted_probe").settings == {"cells": ["forget_cola/n100/s0"]}
    assert "planted_probe" in plan.step("analyze").deps  # its kind is read by the analyze step
    assert "planted" not in [f.name for f in registered_features()]
    assert "planted_probe" not in build_plan(run_config_from_dict(_config(tmp_path))).by_name
