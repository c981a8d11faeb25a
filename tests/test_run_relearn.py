"""The relearn stage: gold labels again on k docs of each forgotten task, its eval, and the report section."""

from __future__ import annotations

import copy
import json
import math

import pytest

from lm_forget.demo.study import demo_settings
from lm_forget.errors import ConfigError
from lm_forget.run import build_plan, execute, run_config_from_dict
from lm_forget.run.cells import Cell
from lm_forget.run.config import RunConfig

BASE = {
    "model": {"name_or_path": "some/model"},
    "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola", "forget_cb"],
              "eval": ["forget_cola", "forget_cb"]},
    "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "features", "analyze"],
    "seeds": [0, 1],
    "forget": {"num_examples": [100, 1000]},
}
# Step keys of BASE at step-key schema 2 (run/key_schema.py). A study without relearn (or any opt-in stage) must
# keep every folder; a change to what keys hash changes these, and must bump KEY_SCHEMA_VERSION (then re-pin).
KEYS_AT_SCHEMA = {
    "eval_pretrained": "95f851751f84",
    "eval_forgetset/pretrained/n100": "5c61c3bac8a7",
    "eval_forgetset/pretrained/n1000": "d9ad48a06e49",
    "finetune": "9e267cb9339d",
    "eval_finetuned": "b2a48a7d5108",
    "eval_forgetset/finetuned/n100": "187ef8c54b6b",
    "eval_forgetset/finetuned/n1000": "7c44052d9a7a",
    "forget/forget_cola/n100/s0": "d1e2c505dd6d",
    "forget/forget_cola/n100/s1": "2dc9b353a7e7",
    "forget/forget_cola/n1000/s0": "3c6f0f2bab25",
    "forget/forget_cola/n1000/s1": "b1e75fcf4d20",
    "forget/forget_cb/n100/s0": "6571ff543145",
    "forget/forget_cb/n100/s1": "387086b232e0",
    "forget/forget_cb/n1000/s0": "c9d39dd60697",
    "forget/forget_cb/n1000/s1": "411109399111",
    "eval_forget/forget_cola/n100/s0": "74980cc8bfcf",
    "eval_forget/forget_cola/n100/s1": "719edcd212ec",
    "eval_forget/forget_cola/n1000/s0": "0c6fa94d6187",
    "eval_forget/forget_cola/n1000/s1": "7fc4059fb8ea",
    "eval_forget/forget_cb/n100/s0": "e74039708e67",
    "eval_forget/forget_cb/n100/s1": "335da9b415d6",
    "eval_forget/forget_cb/n1000/s0": "00a8641b103d",
    "eval_forget/forget_cb/n1000/s1": "69dc9b127f39",
    "eval_forgetset/forget_cola/n100/s0": "c920e1594ffb",
    "eval_forgetset/forget_cola/n100/s1": "e6111cb9f8b8",
    "eval_forgetset/forget_cb/n100/s0": "262f7c8686d9",
    "eval_forgetset/forget_cb/n100/s1": "5d77b0089ea8",
    "eval_forgetset/forget_cola/n1000/s0": "1687d197a359",
    "eval_forgetset/forget_cola/n1000/s1": "e934f2839c9d",
    "eval_forgetset/forget_cb/n1000/s0": "d2e3ac6bed6c",
    "eval_forgetset/forget_cb/n1000/s1": "fc8d04f37981",
    "features/pretrained": "f19ee67b0b14",
    "features/finetuned": "5d4dc2c795ea",
    "analyze": "7f2ca2ccb303",
}
WITH_RELEARN = ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "relearn", "eval_relearn",
                "features", "analyze"]


def _data(tmp_path, **changes) -> dict:
    data = copy.deepcopy(BASE)
    data["run_dir"] = str(tmp_path / "run")
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"stages": ["eval_pretrained", "finetune", "relearn"]}, "'relearn' needs 'forget'"),
        ({"stages": ["finetune", "forget", "eval_relearn"]}, "'eval_relearn' needs 'relearn'"),
        ({"stages": ["finetune", "forget", "eval_forget", "eval_relearn", "relearn"]},
         "'relearn' cannot come after 'eval_relearn'"),
        ({"relearn": {"pool": "retain"}},
         "config.relearn.pool: Input should be 'forget_set', 'held_in' or 'unrelated'"),
        ({"relearn": {"num_examples": [10, 200]}}, "200 docs do not fit in a forget set of 100"),
        ({"relearn": {"num_examples": [10, 10]}}, "has duplicates"),
        ({"relearn": {"pool": "held_in", "num_examples": [10]}}, "exceed data.train_size 1000"),
        ({"relearn": {"use_lora": False}}, "relearn.use_lora: False differs from forget.use_lora"),
        ({"relearn": {"learning_rte": 1e-5}}, "Did you mean 'learning_rate'?"),
        ({"relearn": {"lerning_rate": 1}}, "config.relearn: unknown key 'lerning_rate'. Did you mean 'learning_rate'?"),
    ],
)
def test_bad_relearn_configs_fail_before_any_work(tmp_path, changes, expected):
    stages = changes.pop("stages", WITH_RELEARN)
    with pytest.raises(ConfigError) as info:
        run_config_from_dict(_data(tmp_path, stages=stages, **changes))
    assert expected in str(info.value)
    assert not (tmp_path / "run").exists()


def test_defaults_leave_relearn_off_and_relearn_at_3e5_k10_k100():
    config = RunConfig()
    assert "relearn" not in config.stages and "eval_relearn" not in config.stages
    assert config.relearn.learning_rate == 3e-5 and config.relearn.num_examples == [10, 100]
    assert config.relearn.pool == "forget_set"


def test_keys_of_studies_without_relearn_do_not_change(tmp_path):
    from lm_forget.run.key_schema import KEY_SCHEMA_VERSION

    assert KEY_SCHEMA_VERSION == 2, "keys pinned at schema 2: re-pin KEYS_AT_SCHEMA with the version"
    plan = build_plan(run_config_from_dict(_data(tmp_path)))
    assert {s.name: s.key for s in plan.steps} == KEYS_AT_SCHEMA


def test_plan_has_one_relearn_step_per_cell_and_k(tmp_path):
    plan = build_plan(run_config_from_dict(_data(tmp_path, stages=WITH_RELEARN)))
    relearn = [s for s in plan.steps if s.stage == "relearn"]
    evals = [s for s in plan.steps if s.stage == "eval_relearn"]
    assert len(relearn) == len(evals) == 2 * 2 * 2 * 2  # tasks x sizes x seeds x k
    step = plan.step("relearn/forget_cb/n1000/s1/k100")
    assert step.deps == ("forget/forget_cb/n1000/s1",) and step.cell == Cell(None, "forget_cb", 1000, 1)
    assert step.settings["train"]["learning_rate"] == 3e-5 and step.settings["train"]["use_lora"] is True
    assert plan.step("eval_relearn/forget_cb/n1000/s1/k100").deps == (step.name,)
    assert set(plan.step("analyze").deps) >= {s.name for s in evals}
    # every step a study without relearn has keeps its key, except analyze (it now reads the relearn evals)
    keys = {s.name: s.key for s in plan.steps}
    assert {n: keys[n] for n in KEYS_AT_SCHEMA if n != "analyze"} == {
        n: k for n, k in KEYS_AT_SCHEMA.items() if n != "analyze"}
    # relearning settings reach only the relearn steps and what reads them
    other = build_plan(run_config_from_dict(_data(tmp_path, stages=WITH_RELEARN, relearn={"learning_rate": 1e-4})))
    changed = {s.name for s in other.steps if s.key != keys[s.name]}
    controls = {s.name for s in plan.steps if s.stage in ("relearn_control", "eval_relearn_control")}
    assert controls  # the pretrained control is on by default, and relearns with the same settings
    assert changed == {s.name for s in relearn} | {s.name for s in evals} | controls | {"analyze"}
    # shards: each relearn step runs where its forget cell runs
    from lm_forget.run.runner import selected_steps

    for index in (1, 2, 3):
        mine = selected_steps(plan, (index, 3))
        cells = {s.cell for s in mine if s.stage == "forget"}
        assert {s.cell for s in mine if s.stage in ("relearn", "eval_relearn")} == cells
    # the pool is part of the key: the same k docs from elsewhere is another experiment
    held = build_plan(run_config_from_dict(_data(tmp_path, stages=WITH_RELEARN, data={"train_size": 1200},
                                                 relearn={"pool": "held_in"})))
    assert held.step("relearn/forget_cb/n1000/s1/k100").settings["pool"] == "held_in"


def _labels(step_output) -> list[dict]:
    return [json.loads(line) for line in (step_output / "labels.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.e2e
@pytest.mark.xdist_group("demo_study")
def test_relearn_stage_on_the_demo_study(quick_demo):
    # the quick demo relearns k = 8 and 32 forget-set docs at 3e-3 x 4 epochs. Resuming without rerunning is
    # test_demo_quick's "0 step(s) ran".
    settings = demo_settings(quick=True)
    plan = quick_demo.plan()
    assert settings.relearn_k == [8, 32] and settings.relearn_lr == 3e-3 and settings.relearn_epochs == 4
    assert {"relearn", "eval_relearn"} <= {s.stage for s in plan.steps}
    assert all(s.is_done() for s in plan.steps)

    (forget,) = [s for s in plan.steps if s.stage == "forget"]
    forget_labels = _labels(forget.output)
    for k in (8, 32):
        step = plan.step(f"relearn/{forget.cell.id}/k{k}")
        rows = _labels(step.output)
        # exactly k docs, the first k of the forget set, trained on their gold labels
        assert [r["id"] for r in rows] == [r["id"] for r in forget_labels[:k]]
        assert all(r["label"] == r["gold"] for r in rows)
        state = json.loads((step.output / "forget_config.json").read_text())
        assert state["stage"] == "relearn" and state["init_adapter"] == str(forget.output)
        assert state["examples_per_task"] == {forget.cell.task: k} and state["status"] == "done"
        assert state["settings"]["learning_rate"] == pytest.approx(3e-3)
        assert plan.step(f"eval_relearn/{forget.cell.id}/k{k}").is_done()
    # the forget pass made some labels wrong: relearning on gold labels is a different training set
    assert any(r["label"] != r["gold"] for r in forget_labels[:8])

    analyze = plan.step("analyze")
    index = (analyze.output / "index.md").read_text()
    assert "## Relearning" in index
    import pandas as pd

    table = pd.read_csv(analyze.output / "relearn" / "relearn.csv")
    assert sorted(table["k"]) == [8, 32] and set(table["pool"]) == {"forget_set"}
    assert (table["docs"] == settings.eval_size).all()
    for _, row in table.iterrows():
        for phase in ("finetuned", "forget", "relearn"):
            assert row[f"acc_{phase}_lo"] <= row[f"acc_{phase}"] <= row[f"acc_{phase}_hi"]
        # a share is a number with an interval, or NaN with the reason
        assert math.isfinite(row["recovered_share"]) == (not isinstance(row["note"], str) or not row["note"])
    # the forget drop the relearning starts from is shown (measured lower bound >= 0.37 at 3 data seeds, asserted
    # 0.1). Since the demo's families carry per-doc ids and its forget sets are 4x larger (issue 22), 32 gold-label
    # docs at 3e-3 x 4 epochs no longer bring the skill back (measured: held-out 0.50-0.57 after relearning, from
    # 0.51-0.53 after forgetting; docs/reliability.md, "Demo"), so no recovery is asserted here any more
    k32 = table.set_index("k").loc[32]
    assert k32["forget_drop_lo"] > 0.1
    assert isinstance(k32["relearn_verdict"], str) and k32["relearn_verdict"]


@pytest.mark.e2e
def test_lora_relearn_on_held_in_docs_with_stories260k(tmp_path, tiny_model_dir, mirror_dir, monkeypatch):
    from lm_forget.data.api import load_docs

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    train = {"use_lora": True, "learning_rate": 1e-3, "max_steps": 2, "per_device_train_batch_size": 4,
             "lora_r": 4, "lora_alpha": 8, "save_steps": 50, "max_length": 128}
    n, k = 12, 4
    plan = build_plan(run_config_from_dict({
        "run_dir": str(tmp_path / "run"),
        "model": {"name_or_path": str(tiny_model_dir), "dtype": "float32"},
        "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola"], "eval": ["forget_cola"]},
        "stages": ["finetune", "forget", "relearn", "eval_relearn"],
        "finetune": {**train, "num_examples": 8},
        "forget": {**train, "num_examples": [n]},
        "relearn": {"num_examples": [k], "pool": "held_in", "max_steps": 1, "per_device_train_batch_size": 4,
                    "save_steps": 50, "max_length": 128},
        "eval": {"limit": 5, "batch_size": 16},
        "threads": 1,
    }))
    execute(plan)
    cid = f"forget_cola/n{n}/s0"
    forget, relearn = plan.step(f"forget/{cid}"), plan.step(f"relearn/{cid}/k{k}")
    rows = _labels(relearn.output)
    pool = [d["id"] for d in load_docs("forget_cola", "train")]
    # held_in: the k pool docs right after the forget set, none of them forgotten, on gold labels
    assert [r["id"] for r in rows] == pool[n:n + k]
    assert not {r["id"] for r in rows} & {r["id"] for r in _labels(forget.output)}
    assert all(r["label"] == r["gold"] for r in rows)
    # LoRA: the forget cell's adapter is trained further (its shape kept), and that adapter is evaluated
    state = json.loads((relearn.output / "forget_config.json").read_text())
    assert state["use_lora"] and state["init_adapter"] == str(forget.output) and state["lora"]["r"] == 4
    assert (relearn.output / "adapter_config.json").is_file()
    done = plan.step(f"eval_relearn/{cid}/k{k}").done_record()
    assert str(relearn.output) in done["model_args"] and "forget_cola" in done["scores"]


def test_relearn_follows_every_method_cell(tmp_path):
    plan = build_plan(run_config_from_dict(_data(tmp_path, stages=WITH_RELEARN, seeds=[0],
                                                 forget={"num_examples": [100], "methods": ["random_labels", "npo"]})))
    relearn = {s.name: s for s in plan.steps if s.stage == "relearn"}
    assert len(relearn) == 2 * 2 * 2  # methods x tasks x k
    for method in ("random_labels", "npo"):
        step = relearn[f"relearn/{method}/forget_cb/n100/s0/k10"]
        assert step.deps == (f"forget/{method}/forget_cb/n100/s0",) and step.cell == Cell(method, "forget_cb", 100, 0)
        assert plan.step(f"eval_relearn/{method}/forget_cb/n100/s0/k10").deps == (step.name,)
    # the same k docs relearned after two methods: two steps with their own keys, the same relearn settings
    a, b = (relearn[f"relearn/{m}/forget_cb/n100/s0/k10"] for m in ("random_labels", "npo"))
    assert a.key != b.key and a.settings["train"] == b.settings["train"]
