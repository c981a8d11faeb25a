"""Relearning on unrelated data (``relearn.pool: unrelated``) and the pretrained control (``relearn.control``)."""

from __future__ import annotations

import copy
import json
import math

import pytest
from test_run_relearn import BASE, WITH_RELEARN

from lm_forget.errors import ConfigError
from lm_forget.run import build_plan, execute, run_config_from_dict

POOL_CHANGES = {"forget_set": {}, "held_in": {"data": {"train_size": 1200}, "relearn": {"pool": "held_in"}}}


def _plan(tmp_path, **changes):
    data = copy.deepcopy(BASE)
    data |= {"run_dir": str(tmp_path / "run"), "stages": WITH_RELEARN}
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return build_plan(run_config_from_dict(data))


@pytest.mark.parametrize("pool", ["forget_set", "held_in"])
def test_control_adds_steps_and_changes_no_existing_key(tmp_path, pool):
    changes = copy.deepcopy(POOL_CHANGES[pool])
    plan = _plan(tmp_path, **changes)
    keys = {s.name: s.key for s in plan.steps}
    off = _plan(tmp_path, **{**changes, "relearn": {**changes.get("relearn", {}), "control": False}})
    # control off: the same study without the control steps, key for key; only analyze (it reads them) differs
    assert {s.name: s.key for s in off.steps} == {n: k for n, k in keys.items() if "relearn_control/" not in n} | {
        "analyze": off.step("analyze").key}
    assert off.step("analyze").key != keys["analyze"]

    controls = [s for s in plan.steps if s.stage == "relearn_control"]
    # one control per docs and seed: forget_set docs are the first k of the pool whatever N; held_in's follow N
    per_size = 2 if pool == "held_in" else 1
    assert len(controls) == 2 * per_size * 2 * 2  # tasks x (sizes) x seeds x k
    size = "/n1000" if pool == "held_in" else ""
    control = plan.step(f"relearn_control/{pool}/forget_cb{size}/s1/k100")
    relearn = plan.step("relearn/forget_cb/n1000/s1/k100")
    # the pretrained model (no forget step to start from), the same docs, training settings and seed
    assert control.deps == () and control.cell is None and control.settings["control"] is True
    assert control.settings["model"] == relearn.settings["model"]
    for name in ("train", "seed", "num_examples", "pool", "task", "data"):
        assert control.settings[name] == relearn.settings[name]
    evaluation = plan.step(f"eval_relearn_control/{pool}/forget_cb{size}/s1/k100")
    assert evaluation.deps == (control.name,)
    assert evaluation.settings["tasks"] == plan.step("eval_relearn/forget_cb/n1000/s1/k100").settings["tasks"]
    assert evaluation.name in plan.step("analyze").deps


def test_unrelated_default_is_a_plan_time_rule(tmp_path):
    # matrix tasks (cola, cb: language understanding) are never unrelated; tasks.finetune comes first, then the
    # suite in registry order; the first of another domain wins
    def task(finetune):
        plan = _plan(tmp_path, tasks={"finetune": finetune}, relearn={"pool": "unrelated"})
        return {s.settings["unrelated_task"] for s in plan.steps if s.stage == "relearn"}

    assert task(["forget_cola"]) == {"forget_piqa"}  # the suite's first task, commonsense
    assert task(["forget_cola", "forget_sciq"]) == {"forget_sciq"}  # a fine-tuning task of another domain
    assert task(["forget_cola", "forget_rte", "forget_boolq"]) == {"forget_boolq"}  # rte: same domain as cola
    assert task(["forget_rte"]) == {"forget_piqa"}


def test_unrelated_pool_plan(tmp_path):
    plan = _plan(tmp_path, relearn={"pool": "unrelated", "unrelated_task": "forget_openbookqa"},
                 eval={"forget_scope": "self"})
    relearn = plan.step("relearn/forget_cb/n100/s1/k10")
    assert relearn.settings["unrelated_task"] == "forget_openbookqa" and relearn.settings["task"] == "forget_cb"
    assert relearn.deps == ("forget/forget_cb/n100/s1",)
    # the same openbookqa docs after forgetting cola or cb, at any size: one control per (seed, k)
    controls = [s for s in plan.steps if s.stage == "relearn_control"]
    assert sorted(s.name for s in controls) == [f"relearn_control/unrelated/forget_openbookqa/s{s}/k{k}"
                                                for s in (0, 1) for k in (10, 100)]
    assert "task" not in controls[0].settings
    # scope self: the control is scored on every task whose cells it serves
    control_eval = plan.step("eval_relearn_control/unrelated/forget_openbookqa/s0/k10")
    assert control_eval.settings["tasks"] == ["forget_cola", "forget_cb"]
    # the unrelated task is part of the key
    other = _plan(tmp_path, relearn={"pool": "unrelated", "unrelated_task": "forget_sciq"},
                  eval={"forget_scope": "self"})
    assert other.step(relearn.name).key != relearn.key


def test_vllm_engine_is_sized_for_the_control_adapter(tmp_path):
    from lm_forget.run.models import study_lora_ranks

    # relearning continues the forget adapter (rank 16); the control trains a new one at relearn's rank
    on = _plan(tmp_path, forget={"lora_r": 16}, relearn={"lora_r": 32}).config
    off = _plan(tmp_path, forget={"lora_r": 16}, relearn={"lora_r": 32, "control": False}).config
    assert 32 in study_lora_ranks(on) and 32 not in study_lora_ranks(off) and 16 in study_lora_ranks(off)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"relearn": {"pool": "unrelated", "unrelated_task": "forget_cb"}},
         "relearn.unrelated_task: 'forget_cb' is in tasks.forget"),
        ({"relearn": {"pool": "unrelated", "unrelated_task": "forget_boolq"}, "tasks": {"eval": ["forget_boolq"]}},
         "relearn.unrelated_task: 'forget_boolq' is in tasks.eval"),
        ({"relearn": {"unrelated_task": "forget_sciq"}}, "is set but relearn.pool is forget_set"),
        ({"relearn": {"pool": "unrelated", "unrelated_task": "forget_scq"}}, "relearn.unrelated_task: unknown"),
        ({"relearn": {"pool": "unrelated"}, "tasks": {"eval": ["suite"]}},
         "relearn.pool: unrelated needs a task outside tasks.forget and tasks.eval"),
        ({"relearn": {"pool": "unrelated", "launcher": ["ddp"]}}, "relearn.launcher: pool unrelated trains in this"),
        ({"relearn": {"control": "yes"}}, "config.relearn.control"),
    ],
)
def test_bad_unrelated_configs_fail_before_any_work(tmp_path, changes, expected):
    with pytest.raises(ConfigError) as info:
        _plan(tmp_path, **changes)
    assert expected in str(info.value)
    assert not (tmp_path / "run").exists()


def test_unrelated_docs_are_hash_chosen_and_nest(mirror_dir, monkeypatch):
    from lm_forget.data.api import load_docs
    from lm_forget.data.hashing import stable_digest
    from lm_forget.run.config import RunConfig
    from lm_forget.run.relearn_pools import UNRELATED_SALT, unrelated_docs

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    config = RunConfig()
    ten, four = unrelated_docs(config, "forget_openbookqa", 10), unrelated_docs(config, "forget_openbookqa", 4)
    pool = load_docs("forget_openbookqa", "train", data=config.data)
    assert [d["id"] for d in four] == [d["id"] for d in ten[:4]]  # nested across k
    assert {d["id"] for d in ten} <= {d["id"] for d in pool}
    assert [d["id"] for d in ten] != [d["id"] for d in pool[:10]]  # not the forget set's order
    ranks = [stable_digest(UNRELATED_SALT, config.data.seed, d["id"]) for d in ten]
    assert ranks == sorted(ranks) and ranks[-1] < min(stable_digest(UNRELATED_SALT, config.data.seed, d["id"])
                                                      for d in pool if d not in ten)
    other = RunConfig.model_validate({"data": {"seed": 3}})
    assert [d["id"] for d in unrelated_docs(other, "forget_openbookqa", 10)] != [d["id"] for d in ten]


def test_net_of_the_control_on_planted_phases(tmp_path):
    """Planted held-out outcomes (lm-eval samples files): a control that learns as much as the relearned model
    leaves no net gain; a control that learns nothing leaves the whole gain."""
    from lm_forget.analysis.findings_build import relearn_finding
    from lm_forget.analysis.options import AnalysisOptions
    from lm_forget.analysis.relearn_report import RelearnCell, cell_row, relearn_data, render_relearn
    from lm_forget.analysis.simulate import PlantedTask, simulate_phases, write_study

    a = write_study(tmp_path / "a", simulate_phases([PlantedTask("t", 600, 0.5, 0.9, 0.5)], seed=2))
    b = write_study(tmp_path / "b", simulate_phases([PlantedTask("t", 600, 0.5, 0.9, 0.9)], seed=3))
    base = {"pretrained": a["pretrained"], "finetuned": a["finetuned"], "forget": a["forget"],
            "relearn": b["finetuned"]}  # 0.5 -> 0.9 -> 0.5 -> relearned 0.9

    def row(control):
        return cell_row(RelearnCell("t", 100, 0, 8, "unrelated", unrelated_task="u",
                                    held_out={**base, "control": control}))

    taught, learned_nothing = row(b["forget"]), row(b["pretrained"])
    alone = cell_row(RelearnCell("t", 100, 0, 8, "unrelated", unrelated_task="u",
                                 held_out={p: f for p, f in base.items() if p != "pretrained"}))
    assert "control_gain" not in alone  # no control: the columns of before
    for r in (taught, learned_nothing):  # the control adds columns and changes none
        assert {k: v for k, v in r.items() if k in alone and k != "note"} == {
            k: v for k, v in alone.items() if k != "note"}
        assert r["relearn_verdict"] == "relearned"
        assert r["net_gain"] == pytest.approx(r["relearn_gain"] - r["control_gain"])
    assert taught["control_verdict"] == "taught" and taught["net_verdict"] != "relearned"
    assert taught["net_gain_lo"] <= 0 <= taught["net_gain_hi"]
    assert learned_nothing["control_gain_lo"] <= 0 <= learned_nothing["control_gain_hi"]
    assert learned_nothing["control_verdict"] != "taught" and learned_nothing["net_verdict"] == "relearned"
    assert learned_nothing["net_recovered_share_lo"] <= 1 <= learned_nothing["net_recovered_share_hi"]
    # the pretrained eval missing: the control's columns say why, nothing else changes
    (no_pre := dict(base)).pop("pretrained")
    missing = cell_row(RelearnCell("t", 100, 0, 8, "unrelated", held_out={**no_pre, "control": b["forget"]}))
    assert missing["control_note"] == "control not evaluated: pretrained" and math.isnan(missing["net_gain"])
    lines = render_relearn(relearn_data([taught, learned_nothing, missing]), AnalysisOptions())
    assert "### Net of the control" in lines and sum("| t | 100 | 0 | 8 | unrelated | u |" in x for x in lines) == 4
    finding = relearn_finding([taught, learned_nothing])
    assert "net of the pretrained control, relearned in 1 of 2" in finding.text
    assert all("net gain" in d for d in finding.details)


def _labels(step_output) -> list[dict]:
    return [json.loads(line) for line in (step_output / "labels.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.e2e
def test_unrelated_relearning_and_its_control_on_stories260k(tmp_path, tiny_model_dir, mirror_dir, monkeypatch):
    """Planted check (issue 25, item 5): the pretrained model relearned on k openbookqa docs cannot learn cola
    from them, so the control's gain on cola is noise: its interval covers 0 and it is not 'taught'."""
    from lm_forget.analysis.options import AnalysisOptions
    from lm_forget.analysis.relearn_report import cell_row, relearn_data, render_relearn
    from lm_forget.formats import lm_eval_run, samples_file
    from lm_forget.run.relearn_pools import unrelated_docs
    from lm_forget.run.relearn_steps import relearn_cells

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    train = {"use_lora": True, "learning_rate": 1e-3, "max_steps": 2, "per_device_train_batch_size": 4,
             "lora_r": 4, "lora_alpha": 8, "save_steps": 50, "max_length": 128}
    n, k = 12, 8
    plan = build_plan(run_config_from_dict({
        "run_dir": str(tmp_path / "run"),
        "model": {"name_or_path": str(tiny_model_dir), "dtype": "float32"},
        # openbookqa is fine-tuned on, never forgotten nor evaluated, of another domain: the default unrelated task
        "tasks": {"finetune": ["forget_cola", "forget_openbookqa"], "forget": ["forget_cola"], "eval": ["forget_cola"]},
        "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "relearn",
                   "eval_relearn"],
        "finetune": {**train, "num_examples": 8},
        "forget": {**train, "num_examples": [n]},
        "relearn": {**train, "num_examples": [k], "pool": "unrelated"},
        "eval": {"limit": 80, "batch_size": 32},
        "threads": 1,
    }))
    execute(plan)
    cid = f"forget_cola/n{n}/s0"
    relearn = plan.step(f"relearn/{cid}/k{k}")
    control = plan.step(f"relearn_control/unrelated/forget_openbookqa/s0/k{k}")
    assert relearn.settings["unrelated_task"] == "forget_openbookqa"
    # both train on the same k hash-chosen openbookqa docs, gold labels; the control from the pretrained model
    chosen = [d["id"] for d in unrelated_docs(plan.config, "forget_openbookqa", k)]
    for step in (relearn, control):
        rows = _labels(step.output)
        assert [r["id"] for r in rows] == chosen and all(r["label"] == r["gold"] for r in rows)
    assert json.loads((relearn.output / "forget_config.json").read_text())["init_adapter"] == str(
        plan.step(f"forget/{cid}").output)
    state = json.loads((control.output / "forget_config.json").read_text())
    assert state["init_adapter"] is None and state["examples_per_task"] == {"forget_openbookqa": k}
    assert (control.output / "adapter_config.json").is_file()

    # the control was trained (its log-likelihoods moved) ...
    def logliks(step) -> list:
        path = samples_file(lm_eval_run(step.output)[0], "forget_cola")
        rows = sorted(map(json.loads, path.read_text().splitlines()), key=lambda r: r["doc_id"])
        return [r["resps"] for r in rows]

    pre, ctl = logliks(plan.step("eval_pretrained")), logliks(plan.step(f"eval_relearn_control/unrelated/"
                                                                          f"forget_openbookqa/s0/k{k}"))
    assert len(pre) == len(ctl) == 80 and pre != ctl
    assert ctl != logliks(plan.step(f"eval_relearn/{cid}/k{k}"))  # and is not the relearned forgotten model
    # ... but taught nothing about cola beyond noise
    (cell,) = relearn_cells(plan)
    assert set(cell.held_out) == {"pretrained", "finetuned", "forget", "relearn", "control"}
    row = cell_row(cell)
    assert row["docs"] == 80 and row["unrelated_task"] == "forget_openbookqa"
    assert row["control_gain_lo"] <= 0 <= row["control_gain_hi"], row
    assert row["control_verdict"] != "taught"
    # the net gain is the relearning gain less the control's, with an interval around it
    assert row["net_gain"] == pytest.approx(row["relearn_gain"] - row["control_gain"])
    assert row["net_gain_lo"] <= row["net_gain"] <= row["net_gain_hi"]
    lines = render_relearn(relearn_data([row]), AnalysisOptions())
    assert "### Net of the control" in lines and any("forget_openbookqa" in line for line in lines)
    assert not math.isnan(row["acc_control"]) and row["acc_control_lo"] <= row["acc_control"] <= row["acc_control_hi"]
