"""A 2 x 2 cross-task matrix on the real tiny Llama and real mirror data, run as two shards, then merged;
adapter swapping on one loaded base gives the same numbers as loading each adapter fresh."""

from __future__ import annotations

import json

import pytest

from lm_forget.modeling import ModelRef
from lm_forget.run import build_plan, execute, run_config_from_dict
from lm_forget.run.cells import Cell
from lm_forget.run.models import ModelPool
from lm_forget.run.shard import shard_cells

pytestmark = pytest.mark.e2e

TASKS = ["forget_openbookqa", "forget_cola"]
TRAIN = {"use_lora": True, "learning_rate": 1e-3, "max_steps": 3, "per_device_train_batch_size": 4,
         "lora_r": 4, "lora_alpha": 8, "save_steps": 50, "max_length": 128}


@pytest.fixture(scope="module")
def matrix_config(tmp_path_factory, tiny_model_dir, mirror_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
        yield run_config_from_dict({
            "run_dir": str(tmp_path_factory.mktemp("matrix") / "matrix"),
            "model": {"name_or_path": str(tiny_model_dir), "dtype": "float32"},
            "tasks": {"finetune": TASKS, "forget": TASKS, "eval": TASKS},
            "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "analyze", "push"],
            "push": {"repo_prefix": "me/tiny-forget", "base_model_id": "lm-forget-tests/stories260K"},
            "seeds": [0],
            "finetune": {**TRAIN, "num_examples": 16},
            "forget": {**TRAIN, "num_examples": [16]},
            "eval": {"limit": 12, "batch_size": 16},
            "threads": 1,
        })


@pytest.fixture(scope="module")
def sharded_run(matrix_config) -> dict:
    """The matrix run as two shards, then the merge run, once per module (the adapter test reads its adapters).

    Stage ``push`` calls lm_forget.hub.push.push_folder (tested against a Hub server in the hub tests); here it
    records its calls.
    """
    pushed: list[dict] = []

    def fake_push(folder, repo_id, **kw):
        pushed.append({"folder": folder, "repo": repo_id, **kw})
        return f"https://hub.invalid/{repo_id}"

    plan = build_plan(matrix_config)
    by_name = plan.by_name
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("lm_forget.hub.push.push_folder", fake_push)
        first = execute(plan, shard=(1, 2), pool=ModelPool())
        after_first = {name: by_name[name].is_done()
                       for name in ("forget/forget_cola/n16/s0", "forget/forget_openbookqa/n16/s0", "analyze")}
        pool = ModelPool()
        second = execute(plan, shard=(2, 2), pool=pool)
        merged = execute(plan)  # the merge run: nothing left to do
    return {"plan": plan, "first": first, "after_first": after_first, "second": second, "second_loads": pool.loads,
            "merged": merged, "pushed": pushed}


def _loglik(model, tokenizer, text: str) -> float:
    import torch

    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        return float(model(input_ids=ids, labels=ids).loss)


def test_two_shards_merge_into_the_full_matrix(sharded_run):
    plan = sharded_run["plan"]
    assert [c.id for c in plan.cells] == ["forget_cola/n16/s0", "forget_openbookqa/n16/s0"]
    assert shard_cells(plan.cells, (1, 2)) == [Cell(None, "forget_cola", 16, 0)]
    by_name = plan.by_name

    after_first = sharded_run["after_first"]
    assert after_first["forget/forget_cola/n16/s0"]
    assert not after_first["forget/forget_openbookqa/n16/s0"]
    assert not after_first["analyze"]  # waits for the other shard
    assert {r["step"]: r["status"] for r in sharded_run["first"].rows}["analyze"] == "waits for shards"

    statuses = {r["step"]: r["status"] for r in sharded_run["second"].rows}
    assert statuses["finetune"] == statuses["eval_pretrained"] == "done"  # shared steps: skipped
    assert statuses["forget/forget_openbookqa/n16/s0"] == "ran"
    assert sharded_run["second_loads"] == 1  # the one eval of this shard loaded the base once
    assert by_name["analyze"].is_done()  # the last shard to finish merges

    assert sharded_run["merged"].count("ran") == 0
    pushed = sharded_run["pushed"]
    (report,) = by_name["analyze"].output.glob("n16-s0/matrix_long.csv")
    lines = report.read_text().strip().splitlines()
    assert len(lines) == 1 + 4  # header + 2 x 2 cells
    cells = json.loads(by_name["eval_forget/forget_cola/n16/s0"].done_path.read_text())["scores"]
    assert set(cells) == set(TASKS)
    # one push per cell, each with its adapter and the card's pretrained / fine-tuned / after-forget results
    assert sorted(c["repo"] for c in pushed) == ["me/tiny-forget-cola-n16-s0", "me/tiny-forget-openbookqa-n16-s0"]
    for call in pushed:
        assert (call["folder"] / "adapter_config.json").is_file()
        assert sorted(call["eval_results"]) == ["finetuned", "forget", "pretrained"]  # the phase names


def test_adapter_swapping_equals_fresh_loads(matrix_config, sharded_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    plan = sharded_run["plan"]
    base = str(matrix_config.model_path)
    adapters = [str(plan.step(f"forget/{t}/n16/s0").output) for t in ("forget_cola", "forget_openbookqa")]
    text = "Once upon a time there was a little girl who"
    pool = ModelPool()
    swapped = []
    for adapter in [*adapters, adapters[0], None]:
        with pool.use(ModelRef(base, adapter=adapter)) as (model, tokenizer):
            swapped.append(_loglik(model, tokenizer, text))
    assert pool.loads == 1
    tokenizer = AutoTokenizer.from_pretrained(base)
    fresh = []
    for adapter in adapters:
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval()
        fresh.append(_loglik(model, tokenizer, text))
    plain = _loglik(AutoModelForCausalLM.from_pretrained(base).eval(), tokenizer, text)
    assert swapped[0] == pytest.approx(fresh[0], abs=1e-5)
    assert swapped[1] == pytest.approx(fresh[1], abs=1e-5)
    assert swapped[2] == pytest.approx(swapped[0], abs=1e-6)  # back to the first adapter
    assert swapped[3] == pytest.approx(plain, abs=1e-5)  # adapters disabled = the base model
    assert abs(swapped[0] - swapped[1]) > 1e-6  # the two adapters really differ


def test_data_settings_reach_the_task_loader(tmp_path, mirror_dir, monkeypatch):
    """simple_evaluate drops `metadata` when given a TaskManager: ours must carry the data settings."""
    from lm_forget.run.evaluate import load_tasks, task_manager_for

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    config = run_config_from_dict({"run_dir": str(tmp_path / "r"), "model": {"name_or_path": "x"},
                                   "tasks": {"eval": ["forget_cola"]}, "stages": ["eval_pretrained"],
                                   "data": {"train_size": 30, "eval_size": 20}})
    (task,) = load_tasks(task_manager_for(config, ["forget_cola"]), ["forget_cola"])
    assert (len(task.dataset["train"]), len(task.dataset["test"])) == (30, 20)
