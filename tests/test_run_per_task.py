"""``finetune.per_task``: one fine-tuned model per forgotten task, each task forgotten from its own model
(the per-task design), beside the suite-mixture design (one model for all tasks)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lm_forget.errors import ConfigError
from lm_forget.run import build_plan, execute, run_config_from_dict

TASKS = ["forget_cola", "forget_openbookqa"]
TRAIN = {"use_lora": True, "learning_rate": 1e-3, "max_steps": 2, "per_device_train_batch_size": 4,
         "lora_r": 4, "lora_alpha": 8, "save_steps": 50, "max_length": 128}


def _data(tmp_path, model="some/model", **finetune):
    return {
        "run_dir": str(tmp_path / "run"),
        "model": {"name_or_path": model, "dtype": "float32"},
        "tasks": {"forget": TASKS, "eval": TASKS},
        "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "features", "analyze"],
        "data": {"train_size": 40, "eval_size": 30},
        "finetune": {**TRAIN, "num_examples": 16, "per_task": True, **finetune},
        "forget": {**TRAIN, "num_examples": [12]},
        "eval": {"batch_size": 16},
        "threads": 1,
    }


def test_per_task_plan_fine_tunes_each_forgotten_task_alone(tmp_path):
    plan = build_plan(run_config_from_dict(_data(tmp_path), check_tasks=False))
    for task in TASKS:
        assert plan.step(f"finetune/{task}").settings["tasks"] == [task]
        assert plan.step(f"eval_finetuned/{task}").deps == (f"finetune/{task}",)
        assert plan.step(f"forget/{task}/n12/s0").deps == (f"finetune/{task}",)
        assert plan.step(f"eval_forgetset/finetuned/{task}/n12").settings["tasks"] == [task]
        assert plan.step(f"features/finetuned/{task}").settings["tasks"] == [task]
    assert "finetune" not in plan.by_name and plan.config.tasks.finetune == TASKS
    # the mixture design is the same config with per_task off: one model, the keys of before
    mixture = build_plan(run_config_from_dict({**_data(tmp_path, per_task=False),
                                               "tasks": {"finetune": TASKS, "forget": TASKS, "eval": TASKS}},
                                              check_tasks=False))
    assert mixture.step("forget/forget_cola/n12/s0").deps == ("finetune",)
    assert "per_task" not in mixture.step("finetune").settings["train"]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"tasks": {"finetune": ["forget_cola"], "forget": TASKS, "eval": TASKS}},
     "tasks.finetune ['forget_cola'] differs"),
    ({"finetune": {**TRAIN, "per_task": True, "dynamics_every": 1}}, "not supported with finetune.per_task"),
    ({"stages": ["eval_pretrained", "forget", "eval_forget"]}, "finetune.per_task: needs the finetune stage"),
    ({"finetune": {"per_task": "yes"}}, "config.finetune.per_task: Input should be a valid boolean"),
])
def test_bad_per_task_configs_fail_before_any_work(tmp_path, changes, expected):
    with pytest.raises(ConfigError) as info:
        run_config_from_dict({**_data(tmp_path), **changes}, check_tasks=False)
    assert expected in str(info.value)


@pytest.mark.e2e
def test_per_task_study_normalises_each_row_by_its_own_model(tmp_path, tiny_model_dir, mirror_dir, monkeypatch):
    from lm_forget.train.outputs import read_run_state

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    plan = build_plan(run_config_from_dict(_data(tmp_path, model=str(tiny_model_dir))))
    execute(plan)
    for task in TASKS:
        assert read_run_state(plan.step(f"finetune/{task}").output)["tasks"] == [task]
        state = read_run_state(plan.step(f"forget/{task}/n12/s0").output)
        assert state["init_adapter"] == str(plan.step(f"finetune/{task}").output)
    report = plan.step("analyze").output
    matrix = pd.read_csv(next(report.parent.rglob("matrix.csv")))
    for task in TASKS:
        scores = plan.step(f"eval_finetuned/{task}").done_record()["scores"]
        rows = matrix[matrix.trained_task == task]
        assert len(rows) == len(TASKS)
        for _, row in rows.iterrows():  # each row's denominator: the model that task was forgotten from
            assert row.acc_finetuned == pytest.approx(scores[row.eval_task]["acc"])
    features = json.loads(next((report.parent).rglob("features/finetuned/features.json")).read_text())
    assert set(features["tasks"]) == set(TASKS)  # one record, each task from its own fine-tuned model
    assert (report / "index.md").is_file()
