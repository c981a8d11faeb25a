"""A study's Hub side: the runner's push step adds every adapter to one collection; lm-eval's hub/W&B logging
settings pass through; tokens never go in a run config. Real huggingface_hub client, loopback Hub."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hub_server import serve

from lm_forget.errors import ConfigError
from lm_forget.run.config import run_config_from_dict

TOKEN = "hf_lmforgetSTUDYtoken0123456789secret"


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    server = serve(monkeypatch, tmp_path, {TOKEN: "alice"}, TOKEN)
    yield server
    server.stop()


def _config(tmp_path: Path, **changes) -> dict:
    data = {"run_dir": str(tmp_path / "run"), "name": "tiny-study", "model": {"name_or_path": "org/base"},
            "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola", "forget_rte"], "eval": ["forget_cola"]},
            "stages": ["finetune", "forget", "push"], "forget": {"num_examples": [16]},
            "push": {"repo_prefix": "alice/tiny", "collection": "tiny-study adapters", "timeout": 5}}
    data.update(changes)
    return data


def _finished_forget_folder(folder: Path, task: str) -> None:
    """What a finished forget step leaves (weights of a real safetensors file; the push never loads them)."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file({"base_model.model.lora_A.weight": torch.zeros(2, 2)}, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2}))
    (folder / "forget_config.json").write_text(json.dumps({
        "status": "done", "model": "org/base", "stage": "forget", "method": "random_labels", "tasks": [task],
        "seed": 0, "num_examples": 16}))
    (folder / "training_args.bin").write_bytes(b"pickle")


def test_push_step_groups_the_study_in_one_collection(hub, tmp_path):
    from lm_forget.run.graph import build_plan
    from lm_forget.run.steps.push import run_push

    config = run_config_from_dict(_config(tmp_path))
    plan = build_plan(config)
    pushes = [s for s in plan.steps if s.kind == "push"]
    assert len(pushes) == 2
    for step in pushes:
        _finished_forget_folder(plan.step(step.deps[0]).output, step.cell.task)
    ctx = SimpleNamespace(config=config, plan=plan)
    outs = [run_push(step, ctx) for step in pushes]
    outs.append(run_push(pushes[0], ctx))  # a rerun (or another shard) finds the same collection
    assert len({o["collection"] for o in outs}) == 1 and len(hub.state.collections) == 1
    (found,) = hub.state.collections.values()
    assert found["title"] == "tiny-study adapters" and found["owner"] == "alice" and found["private"]
    assert [i["id"] for i in found["items"]] == ["alice/tiny-cola-n16-s0", "alice/tiny-rte-n16-s0"]
    assert all(i["type"] == "model" and "cell forget_" in i["note"] for i in found["items"])
    assert "training_args.bin" not in hub.files("alice/tiny-cola-n16-s0")

    from huggingface_hub import HfApi  # the client reads it back as a Collection

    collection = HfApi().get_collection(outs[0]["collection"])
    assert [item.item_id for item in collection.items] == ["alice/tiny-cola-n16-s0", "alice/tiny-rte-n16-s0"]
    assert collection.items[1].note.endswith("cell forget_rte/n16/s0")


@pytest.mark.parametrize(("changes", "message"), [
    ({"forget": {"num_examples": [16], "hub_token": TOKEN}}, "forget.hub_token is not accepted"),
    ({"eval": {"hf_hub_log_args": {"token": TOKEN}}}, "hf_hub_log_args.token is not accepted"),
    ({"eval": {"hf_hub_log_args": {"hub_results_orgg": "alice"}}}, "unknown key 'hub_results_orgg'"),
    ({"model": {"name_or_path": "LOCAL"}}, "--base-model-id ORG/NAME"),
])
def test_study_hub_settings_fail_before_any_work(tmp_path, tiny_model_dir, changes, message):
    if changes.get("model"):
        changes = {"model": {"name_or_path": str(tiny_model_dir)}}  # a local folder that names no Hub id
    with pytest.raises(ConfigError, match=message) as info:
        run_config_from_dict(_config(tmp_path, **changes))
    assert TOKEN not in str(info.value)
    assert not (tmp_path / "run").exists()
    ok = _config(tmp_path, model={"name_or_path": str(tiny_model_dir)})
    ok["push"]["base_model_id"] = "org/stories260K"
    assert run_config_from_dict(ok).push.base_model_id == "org/stories260K"


def test_lm_eval_hub_and_wandb_arguments_pass_through(tmp_path, monkeypatch):
    from lm_eval.loggers import EvaluationTracker

    from lm_forget.run.evaluate import hub_log_args

    config = run_config_from_dict(_config(tmp_path, eval={
        "hf_hub_log_args": {"hub_results_org": "alice", "details_repo_name": "tiny-details",
                            "push_results_to_hub": True, "public_repo": False},
        "wandb_args": {"project": "lm-forget", "mode": "offline"}}))
    assert config.eval.wandb_args == {"project": "lm-forget", "mode": "offline"}
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    args = hub_log_args(config.eval.hf_hub_log_args)
    assert args["token"] == TOKEN and "token" not in config.eval.hf_hub_log_args  # read at run time only
    tracker = EvaluationTracker(output_path=str(tmp_path / "out"), **args)  # lm-eval accepts every key
    assert tracker.push_results_to_hub and tracker.details_repo == "alice/tiny-details"


def test_logging_destinations_do_not_change_step_keys(tmp_path):
    """Adding lm-eval hub/W&B logging to a finished study must not make its eval steps run again."""
    from lm_forget.run.graph import build_plan

    stages = ["eval_pretrained", "finetune", "eval_finetuned"]
    plain = build_plan(run_config_from_dict(_config(tmp_path, stages=stages)))
    logged = build_plan(run_config_from_dict(_config(tmp_path, stages=stages, eval={
        "hf_hub_log_args": {"hub_results_org": "alice"}, "wandb_args": {"project": "p"}})))
    assert [s.key for s in plain.steps] == [s.key for s in logged.steps]


def test_eval_step_pushes_lm_eval_results_with_hf_hub_log_args(hub, tmp_path, tiny_model_dir, mirror_dir, monkeypatch):
    """lm-eval's own EvaluationTracker pushes results and samples to the Hub, as `lm_eval --hf_hub_log_args`."""
    from lm_forget.modeling import ModelRef
    from lm_forget.run.evaluate import evaluate_model

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    config = run_config_from_dict(_config(tmp_path, model={"name_or_path": str(tiny_model_dir)},
                                          stages=["eval_pretrained"], tasks={"eval": ["forget_cola"]}, eval={
        "limit": 4, "batch_size": 4, "hf_hub_log_args": {
            "hub_results_org": "alice", "details_repo_name": "tiny-details", "results_repo_name": "tiny-details",
            "push_results_to_hub": True, "push_samples_to_hub": True, "public_repo": True}}))
    scores = evaluate_model(config, ModelRef(config.model_path), ["forget_cola"], tmp_path / "out")
    assert set(scores) == {"forget_cola"}
    files = hub.files("alice/tiny-details", kind="dataset")
    assert "README.md" in files  # lm-eval's recreate_metadata_card ran, as its CLI does
    assert [p for p in files if "/results_" in p] and [p for p in files if "/samples_forget_cola_" in p]
    assert list((tmp_path / "out").rglob("results_*.json"))  # the step's own folder is written as before
    assert all(TOKEN.encode() not in content for content in files.values())
