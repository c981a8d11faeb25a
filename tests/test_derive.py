"""``lm-forget tasks derive``: any lm-eval multiple-choice task becomes a forget task; others are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from studies import CliResult, run_cli

pytestmark = pytest.mark.e2e
LOGIQA = Path("EleutherAI/logiqa/logiqa")


def _cli(*args: str, env: dict) -> CliResult:
    """``lm-forget ARGS`` in process, with ``env`` set for the call."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        return run_cli(*args)


@pytest.fixture(scope="module")
def logiqa_mirror(tmp_path_factory, mirror_dir) -> Path:
    """Real LogiQA: its validation rows serve as the training split (the mirror has no train split)."""
    root = tmp_path_factory.mktemp("logiqa_mirror")
    (root / LOGIQA).mkdir(parents=True)
    (root / LOGIQA / "train.jsonl").write_bytes((mirror_dir / LOGIQA / "validation.jsonl").read_bytes())
    (root / LOGIQA / "test.jsonl").write_bytes((mirror_dir / LOGIQA / "test.jsonl").read_bytes())
    return root


def test_derive_logiqa_then_evaluate_it(tmp_path, logiqa_mirror, tiny_model_dir):
    out = tmp_path / "my_tasks"
    env = {"LM_FORGET_DATA_DIR": str(logiqa_mirror), "HF_HUB_OFFLINE": "1"}
    result = _cli("tasks", "derive", "logiqa", "--out", str(out), env=env)
    assert result.code == 0, result.stderr[-3000:]
    yaml_path = out / "forget_logiqa.yaml"
    text = yaml_path.read_text()
    assert "source_task: logiqa" in text and "custom_dataset: !function lm_forget.data.loader.custom_dataset" in text

    shown = _cli("tasks", "show", "forget_logiqa", "--json", env={**env, "LM_FORGET_TASKS_DIR": str(out)})
    assert shown.code == 0, shown.stderr[-2000:]
    report = json.loads(shown.stdout)
    assert report["splits"]["test"]["size"] > 500
    assert report["splits"]["test"]["dropped"].get("prompt_rewrite_failed", 0) == 0

    from lm_forget.data.api import load_docs

    os.environ["LM_FORGET_DATA_DIR"] = str(logiqa_mirror)
    try:
        docs = load_docs("forget_logiqa", "test", task_dirs=[out])
    finally:
        del os.environ["LM_FORGET_DATA_DIR"]
    for doc in docs[:100]:
        lines = doc["prompt"].split("\n")
        assert lines.count("Choices:") == 1
        options = lines[lines.index("Choices:") + 1 : -1]
        assert options == [f"A. {doc['choices'][0]}", f"B. {doc['choices'][1]}"], "only the two kept options"

    run = subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
                          f"pretrained={tiny_model_dir}", "--include_path", str(out), "--tasks", "forget_logiqa",
                          "--limit", "4", "--device", "cpu"], capture_output=True, text=True, timeout=600,
                         env={**os.environ, **env})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "forget_logiqa" in run.stdout


def test_derive_refuses_non_multiple_choice_tasks(tmp_path):
    result = _cli("tasks", "derive", "gsm8k", "--out", str(tmp_path / "t"), env={})
    assert result.code != 0
    assert "only multiple_choice" in result.stderr
    assert not (tmp_path / "t").exists()


def test_derive_refuses_unknown_and_suite_names(tmp_path):
    unknown = _cli("tasks", "derive", "logiqaa", "--out", str(tmp_path), env={})
    assert unknown.code != 0 and "logiqa" in unknown.stderr
    suite = _cli("tasks", "derive", "forget_boolq", "--out", str(tmp_path), env={})
    assert suite.code != 0 and "already a forget task" in suite.stderr
