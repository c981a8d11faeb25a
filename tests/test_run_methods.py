"""Forgetting methods as an axis of the study: plan, step keys, validation, the demo's method comparison."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from lm_forget.data.registry import SUITE
from lm_forget.errors import ConfigError
from lm_forget.run import build_plan, run_config_from_dict
from lm_forget.run.config import load_run_config
from lm_forget.run.shard import shard_cells
from lm_forget.run.training import forget_config_kwargs

REPO = Path(__file__).resolve().parents[1]

BASE = {
    "run_dir": "/tmp/axis_run",
    "model": {"name_or_path": "some/model"},
    "tasks": {"finetune": ["forget_cola", "forget_rte"], "forget": ["forget_cola", "forget_rte"],
              "eval": ["forget_cola", "forget_rte", "forget_boolq"]},
    "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "features", "analyze",
               "push"],
    "seeds": [0, 1],
    "forget": {"num_examples": [100], "method": "flipped_labels", "learning_rate": 2e-4},
    "push": {"repo_prefix": "me/x"},
}

METHODS = ["random_labels", {"name": "npo", "args": {"beta": 0.1}, "learning_rate": 1e-5},
           {"name": "npo", "label": "npo_b05", "args": {"beta": 0.5}}]


def _config(**forget):
    data = copy.deepcopy(BASE)
    if "methods" in forget and "method" not in forget:
        data["forget"].pop("method")
    data["forget"].update(forget)
    return run_config_from_dict(data, check_tasks=False)


def _keys(plan):
    return {s.name: s.key for s in plan.steps}


def test_a_method_axis_keeps_the_keys_of_the_steps_every_method_shares():
    one, axis = _keys(build_plan(_config())), _keys(build_plan(_config(methods=METHODS)))
    shared = ["eval_pretrained", "eval_forgetset/pretrained/n100", "finetune", "eval_finetuned",
              "eval_forgetset/finetuned/n100", "features/pretrained", "features/finetuned"]
    assert {k: one[k] for k in shared} == {k: axis[k] for k in shared}


def test_methods_are_one_more_axis_of_cells(tmp_path):
    plan = build_plan(_config(methods=METHODS))
    assert len(plan.cells) == 3 * 2 * 1 * 2  # method x task x size x seed
    forget = plan.step("forget/npo_b05/forget_rte/n100/s1")
    assert forget.settings["train"]["method"] == {"name": "npo", "args": {"beta": 0.5}}
    assert "label_mode" not in forget.settings["train"] and "method" not in forget.settings["train"]["method"]
    assert plan.step("eval_forget/npo/forget_rte/n100/s1").deps == ("forget/npo/forget_rte/n100/s1",)
    assert plan.step("eval_forgetset/npo/forget_rte/n100/s1").deps == ("forget/npo/forget_rte/n100/s1",)
    assert plan.step("push/random_labels/forget_cola/n100/s0").cell.id == "random_labels/forget_cola/n100/s0"
    assert len({s.dir for s in plan.steps}) == len(plan.steps)
    # each method's forget steps have their own keys
    keys = _keys(plan)
    assert len({keys[f"forget/{m}/forget_cola/n100/s0"] for m in ("random_labels", "npo", "npo_b05")}) == 3
    # shards partition the cells, whole methods included
    shards = [set(shard_cells(plan.cells, (i, 3))) for i in (1, 2, 3)]
    assert set().union(*shards) == set(plan.cells) and sum(map(len, shards)) == len(plan.cells)

    # the method's parameters are part of its key, and only of its own steps (and the analysis)
    changed = copy.deepcopy(METHODS)
    changed[1]["args"]["beta"] = 0.2
    other = _keys(build_plan(_config(methods=changed)))
    differ = {n for n in keys if keys[n] != other[n]}
    assert "forget/npo/forget_cola/n100/s0" in differ and "eval_forget/npo/forget_cola/n100/s0" in differ
    assert not any(n.split("/")[1] in ("random_labels", "npo_b05") for n in differ if "/" in n)
    assert {n.split("/")[0] for n in differ if "/npo/" not in n} <= {"analyze"}


def test_method_settings_reach_the_trainer(tmp_path):
    config = _config(methods=METHODS)
    plan = build_plan(config)
    step = plan.step("forget/npo/forget_cola/n100/s0")
    kwargs = forget_config_kwargs(config, config.forget, stage="forget", tasks=["forget_cola"], num_examples=100,
                                  seed=0, init=None, output_dir=tmp_path, resume=False,
                                  method=step.settings["train"]["method"])
    assert kwargs["method"] == "npo" and kwargs["method_args"] == {"beta": 0.1}
    assert kwargs["learning_rate"] == 1e-5  # the method's own, not forget.learning_rate
    plain = forget_config_kwargs(config, config.forget, stage="forget", tasks=["forget_cola"], num_examples=100,
                                 seed=0, init=None, output_dir=tmp_path, resume=False)
    assert "method" not in plain and plain["learning_rate"] == 2e-4
    from lm_forget.train.config import ForgetConfig

    built = ForgetConfig(**{**kwargs, "model": "x"})  # the real trainer config accepts them
    assert built.forget_method.name == "npo"


@pytest.mark.parametrize(("forget", "needle"), [
    ({"methods": ["npoo"]}, "Did you mean 'npo'?"),
    ({"methods": [{"name": "npo", "args": {"betta": 0.1}}]}, "forget.methods[0].args"),
    ({"methods": [{"name": "npo", "args": {"beta": -1}}]}, "beta must be > 0"),
    ({"methods": [{"name": "npo", "retain_wieght": 1.0}]}, "Did you mean 'retain_weight'?"),
    ({"methods": ["npo", {"name": "npo", "args": {"beta": 0.5}}]}, "give each entry its own `label`"),
    ({"methods": [{"args": {}}]}, "no name"),
    ({"method": "flipped_label"}, "Did you mean 'flipped_labels'?"),
    ({"method": "npo"}, "is a loss method; list it in forget.methods"),
    ({"methods": ["npo"], "method": "flipped_labels"}, "applies only without forget.methods"),
    ({"methods": ["flip"]}, "unknown forgetting method 'flip'"),
])
def test_bad_methods_fail_before_any_work(forget, needle):
    with pytest.raises(ConfigError) as err:
        _config(**forget)
    assert needle in str(err.value)


def test_one_forgetting_method_is_named_like_an_axis_entry():
    """``forget.method`` reaches the forget step as the axis entries do (``MethodSpec.step_settings``' shape)."""
    plan = build_plan(_config())
    assert plan.step("forget/forget_cola/n100/s0").settings["train"]["method"] == {"name": "flipped_labels"}
    config = _config(methods=["flipped_labels", "random_labels"])
    assert [m.name for m in config.forget.method_specs] == ["flipped_labels", "random_labels"]
    assert "forget/flipped_labels/forget_cola/n100/s0" in build_plan(config).by_name


def test_methods_llama2_config_plans_and_dry_runs(tmp_path, monkeypatch):
    config = load_run_config(REPO / "configs" / "study" / "methods_llama2.yaml")
    plan = build_plan(config)
    forget = [s for s in plan.steps if s.stage == "forget"]
    assert len(forget) == 8 * len(SUITE) * 1 * 3
    assert {s.settings["train"]["method"]["name"] for s in forget} == {
        "random_labels", "flipped_labels", "uniform", "grad_ascent", "grad_diff", "npo", "simnpo", "rmu"}
    monkeypatch.chdir(tmp_path)  # run_dir is relative: the dry run must not write into the repo
    config_path = REPO / "configs" / "study" / "methods_llama2.yaml"
    from studies import run_cli

    done = run_cli("run", str(config_path), "--dry-run")
    assert done.code == 0, done.stderr[-3000:]
    assert "forget/rmu/forget_boolq/n1000/s2" in done.stdout


@pytest.mark.e2e
@pytest.mark.xdist_group("demo_study")
def test_demo_quick_compares_methods(quick_demo, tmp_path):
    from studies import copy_study, run_cli

    out = copy_study(quick_demo.out, tmp_path / "demo")  # the shared study's finished steps are reused
    done = run_cli("demo", "--quick", "--methods", "random_labels,grad_ascent", "--out", str(out))
    assert done.code == 0, done.stderr[-3000:]
    plan = quick_demo.plan()
    methods_plan = build_plan(load_run_config(out / "run.yaml"))
    for name in ("eval_pretrained", "finetune", "eval_finetuned"):  # one fine-tune serves every method
        assert methods_plan.step(name).key == plan.step(name).key
    ran = int(done.stdout.rsplit(" step(s) ran", 1)[0].rsplit("\n", 1)[1])
    assert ran <= len(methods_plan.steps) - 3
    for method in ("random_labels", "grad_ascent"):
        (cell,) = out.glob(f"forget/{method}-demo_review-n256-s0-*/done.json")
        assert json.loads(cell.read_text())["num_examples"] == 256
        assert f"{method}: forget review" in done.stdout  # the printed accuracy table
    assert "method comparison: " in done.stdout
    analyze = methods_plan.step("analyze").done_record()
    index = Path(analyze["index"]).read_text()
    assert "## Forgetting methods compared" in index
    forget_set = index.split("## Forget set vs held-out", 1)[1].split("\n## ", 1)[0]  # one section, a table per method
    assert "### random_labels" in forget_set and "### grad_ascent" in forget_set
    for method in ("random_labels", "grad_ascent"):
        rows = pd.read_csv(Path(analyze["index"]).parent / "protocol" / method / "forget_set.csv")
        assert list(rows["task"]) == ["demo_review"] and (rows["n"] == 256).all()
    table = pd.read_csv(Path(analyze["index"]).parent / "methods" / "methods.csv")
    assert list(table["method"]) == ["random_labels", "grad_ascent"]
    assert (table["forget_set_forget_n"] == 256).all() and (table["held_out_forget_n"] == 200).all()
    assert (table["other_tasks_forget_n"] == 2 * 200).all()
    assert (table["forget_set_forget_acc_lo"] <= table["forget_set_forget_acc"]).all()
    assert (Path(analyze["index"]).parent / "methods" / "methods.png").stat().st_size > 0
    assert "## What predicts forgetting, by method" in index
    preds = pd.read_csv(Path(analyze["index"]).parent / "methods" / "predictors_by_method.csv")
    assert set(preds["method"]) == {"random_labels", "grad_ascent"}
    # one forgotten task: every predictor is "not tested" at n = 1, and the table says so rather than guessing
    assert set(preds["verdict"]) == {"not tested"} and (preds["n_tasks"] == 1).all()
    # its HTML: every figure shown (the methods figure, each method's forget-set contrast), no broken target
    from pages import check_study_pages

    reports = check_study_pages(Path(analyze["index"]).parent)
    assert {r.name for r in reports} == {f"{m}-n256-s0" for m in ("random_labels", "grad_ascent")}


def test_bad_demo_method_fails_before_writing_anything(tmp_path):
    out = tmp_path / "demo"
    from studies import run_cli

    done = run_cli("demo", "--quick", "--methods", "random_labels,npoo", "--out", str(out))
    assert done.code != 0
    assert "Did you mean 'npo'?" in done.stderr + done.stdout
    assert not any(out.glob("model-*"))


def test_forget_phase_of_full_weight_models_is_one_per_task(tmp_path):
    """lora: false: each forgotten task has its own weights (the runner's layout); adapters still share one base."""
    from lm_forget.analysis.samples import check_one_model
    from lm_forget.errors import DataError

    def results(model_args, task):
        return {"config": {"model_args": model_args}, "configs": {task: {}}}

    full = {tmp_path / "a.json": results("pretrained=/run/forget/a", "forget_cola"),
            tmp_path / "b.json": results("pretrained=/run/forget/b", "forget_rte")}
    check_one_model(full, tmp_path)
    adapters = {tmp_path / "a.json": results("pretrained=base1,peft=/run/a", "forget_cola"),
                tmp_path / "b.json": results("pretrained=base2,peft=/run/b", "forget_rte")}
    with pytest.raises(DataError, match="two different models"):
        check_one_model(adapters, tmp_path)
    same_task = {tmp_path / "a.json": results("pretrained=/run/forget/a", "forget_cola"),
                 tmp_path / "b.json": results("pretrained=/run/forget/b", "forget_cola")}
    with pytest.raises(DataError, match="for task forget_cola"):
        check_one_model(same_task, tmp_path)
