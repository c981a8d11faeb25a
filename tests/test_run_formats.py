"""The opt-in stage ``eval_formats``: every model scored on the forgotten task's format variants, and its table."""

from __future__ import annotations

import math

import pytest
from test_run_deep import tiny_deep_study
from test_run_relearn import KEYS_AT_SCHEMA, _data

from lm_forget.data.variants import variant_names, variant_task_name
from lm_forget.errors import ConfigError
from lm_forget.run import build_plan, execute, run_config_from_dict

STAGES = ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "eval_formats", "features",
          "analyze"]


def test_plan_adds_format_evals_per_model_and_keeps_every_key(tmp_path):
    plan = build_plan(run_config_from_dict(_data(tmp_path, stages=STAGES)))
    names = sorted(s.name for s in plan.steps if s.stage == "eval_formats")
    cells = sorted({s.cell.id for s in plan.steps if s.stage == "forget"})
    models = [f"eval_formats/{m}" for m in ("pretrained", "finetuned")]
    assert names == sorted([*(f"{m}/held_out" for m in models), *(f"{m}/n{n}/forget_set" for m in models
                                                                  for n in (100, 1000)),
                            *(f"eval_formats/{c}/{p}" for c in cells for p in ("held_out", "forget_set"))])
    cell = plan.step("eval_formats/forget_cb/n100/s1/forget_set")
    assert cell.kind == "eval" and cell.deps == ("forget/forget_cb/n100/s1",)
    assert cell.settings["tasks"] == [variant_task_name(v, "forget_cb") for v in variant_names()]
    assert cell.settings["forget_set"] == {"eval_on": "train", "train_size": 100} and "limit" not in cell.settings
    pretrained = plan.step("eval_formats/pretrained/held_out")
    assert len(pretrained.settings["tasks"]) == 2 * len(variant_names()) and "model" in pretrained.settings
    assert plan.step("eval_formats/finetuned/n1000/forget_set").deps == ("finetune",)
    assert set(plan.step("analyze").deps) >= set(names)
    keys = {s.name: s.key for s in plan.steps}
    assert {n: keys[n] for n in KEYS_AT_SCHEMA if n != "analyze"} == {
        n: k for n, k in KEYS_AT_SCHEMA.items() if n != "analyze"}


def test_format_stage_needs_forget(tmp_path):
    with pytest.raises(ConfigError, match="'eval_formats' needs 'forget'"):
        run_config_from_dict(_data(tmp_path, stages=["eval_pretrained", "eval_formats"]))
    assert not (tmp_path / "run").exists()


@pytest.mark.e2e
def test_format_section_on_stories260k(tmp_path, tiny_model_dir, mirror_dir, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    data = tiny_deep_study(tmp_path, tiny_model_dir, quantize=False)
    data["stages"] = [s for s in data["stages"] if s != "mia"][:-1] + ["eval_formats", "analyze"]
    plan = build_plan(run_config_from_dict(data))
    execute(plan)
    out = plan.step("analyze").output
    assert "### Format variants" in (out / "index.md").read_text()
    rows = pd.read_csv(out / "deep" / "formats.csv").set_index("format")
    assert list(rows.index) == variant_names()
    for part in ("forget_set", "held_out"):
        assert (rows[f"{part}_docs"] == 32).all()
        for phase in ("pretrained", "finetuned", "forget"):
            assert ((rows[f"{part}_{phase}_lo"] <= rows[f"{part}_{phase}"])
                    & (rows[f"{part}_{phase}"] <= rows[f"{part}_{phase}_hi"])).all()
        for variant in variant_names():  # a kept share with its interval, or undefined with the reason
            kept, note = rows.loc[variant, f"{part}_kept"], str(rows.loc[variant, "note"])
            assert (math.isfinite(kept) and rows.loc[variant, f"{part}_kept_lo"] <= kept) or "undefined" in note
    # each number is lm-eval's own accuracy of that step, on the variant task
    task = variant_task_name("swapped", "forget_cola")
    done = plan.step("eval_formats/forget_cola/n32/s0/forget_set").done_record()
    assert rows.loc["swapped", "forget_set_forget"] == pytest.approx(done["scores"][task]["acc"])
    done = plan.step("eval_formats/finetuned/held_out").done_record()
    assert rows.loc["letters", "held_out_finetuned"] == pytest.approx(
        done["scores"][variant_task_name("letters", "forget_cola")]["acc"])
