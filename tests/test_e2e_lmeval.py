"""End to end through the real ``lm_eval`` CLI in a subprocess, on the real stories260K model.

No ``--include_path`` anywhere: the installed start-up hook makes the suite visible.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lm_forget.data.docs import scoring_pair
from lm_forget.data.registry import suite_task_names

pytestmark = pytest.mark.e2e
LM_EVAL = [sys.executable, "-m", "lm_eval"]


def _run(args: list[str], env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env}, timeout=timeout)


def _results(out: Path) -> dict:
    files = sorted(out.rglob("results_*.json"))
    assert files, f"no results under {out}"
    return json.loads(files[-1].read_text())


def _samples(out: Path, task: str) -> list[dict]:
    files = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    assert files, f"no samples for {task} under {out}"
    return [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def env(suite_mirror) -> dict:
    return {"LM_FORGET_DATA_DIR": str(suite_mirror), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def wildcard_run(tmp_path_factory, env, tiny_model_dir) -> Path:
    out = tmp_path_factory.mktemp("wildcard")
    result = _run([*LM_EVAL, "run", "--model", "hf", "--model_args", f"pretrained={tiny_model_dir},dtype=float32",
                   "--tasks", "forget_*", "--limit", "4", "--device", "cpu", "--batch_size", "8",
                   "--output_path", str(out), "--log_samples"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_wildcard_runs_the_whole_suite_without_include_path(wildcard_run):
    results = _results(wildcard_run)["results"]
    assert sorted(k for k in results if k.startswith("forget_")) == sorted(suite_task_names())
    for name in suite_task_names():
        assert 0.0 <= results[name]["acc,none"] <= 1.0
        assert "acc_norm,none" in results[name]


def test_logged_samples_score_exactly_the_docs_pairs(wildcard_run):
    for task in ("forget_openbookqa", "forget_winogrande", "forget_commonsense_qa", "forget_cola"):
        samples = _samples(wildcard_run, task)
        assert len(samples) == 4
        for sample in samples:
            doc = sample["doc"]
            pairs = [(arg["arg_0"], arg["arg_1"]) for arg in sample["arguments"].values()]
            assert pairs == [scoring_pair(doc, 0), scoring_pair(doc, 1)]
            assert str(sample["target"]) in (str(doc["label"]), doc["continuation"])


def test_ls_lists_the_suite_and_group(env):
    result = _run([*LM_EVAL, "ls", "tasks"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    listed = {name for name in suite_task_names() if name in result.stdout}
    assert listed == set(suite_task_names())


def test_validate_all_21(env):
    result = _run([*LM_EVAL, "validate", "--tasks", ",".join(suite_task_names())], env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def _lora_adapter(base: Path, out: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    peft_model.save_pretrained(out)
    return out


def test_peft_adapter_through_lm_eval_changes_loglikelihoods(tmp_path, env, tiny_model_dir):
    adapter = _lora_adapter(tiny_model_dir, tmp_path / "adapter")
    runs = {}
    for name, extra in (("base", ""), ("peft", f",peft={adapter}")):
        out = tmp_path / name
        result = _run([*LM_EVAL, "--model", "hf", "--model_args", f"pretrained={tiny_model_dir},dtype=float32{extra}",
                       "--tasks", "forget_cola,forget_rte", "--limit", "6", "--device", "cpu",
                       "--output_path", str(out), "--log_samples"], env)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = [float(r[0]) for s in _samples(out, "forget_cola") for r in s["filtered_resps"]]
    assert len(runs["base"]) == len(runs["peft"]) == 12
    assert any(abs(a - b) > 1e-4 for a, b in zip(runs["base"], runs["peft"], strict=True))


def test_lm_forget_eval_passes_through_with_hook_disabled(tmp_path, env, tiny_model_dir):
    result = _run([sys.executable, "-m", "lm_forget", "eval", "--model", "hf", "--model_args",
                   f"pretrained={tiny_model_dir}", "--tasks", "forget_cola", "--limit", "3", "--device", "cpu"],
                  {**env, "LM_FORGET_DISABLE_HOOK": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "forget_cola" in result.stdout


def test_yaml_with_missing_source_fails_the_run_clearly(tmp_path, env, tiny_model_dir):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "forget_ghost.yaml").write_text(
        "include: " + str(Path(__file__).resolve().parents[1] / "task_configs" / "_forget_template.yaml") + "\n"
        "task: forget_ghost\ndataset_kwargs:\n  forget_task: forget_ghost\n  source_task: ghost\n"
        "  source_config: /nonexistent/ghost.yaml\n"
    )
    result = _run([*LM_EVAL, "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks",
                   "forget_ghost", "--limit", "2", "--device", "cpu"], {**env, "LM_FORGET_TASKS_DIR": str(tasks)})
    assert result.returncode != 0
    assert "/nonexistent/ghost.yaml" in result.stderr
