"""Bad input gets a clear error, names where, says how to fix it, exits non-zero, and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from studies import CliResult, run_cli

from lm_forget.data.api import load_task
from lm_forget.errors import ConfigError, DataError


def _cli(*args: str, env: dict | None = None) -> CliResult:
    """``lm-forget ARGS`` in process, with ``env`` set for the call."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        return run_cli(*args)


def test_unknown_task_suggests_near_names():
    result = _cli("tasks", "show", "forget_boolk")
    assert result.code != 0
    assert "unknown forget task 'forget_boolk'" in result.stderr and "forget_boolq" in result.stderr
    with pytest.raises(ConfigError, match="forget_hellaswag"):
        load_task("hellaswg")


def test_mirror_missing_a_split_names_the_expected_path(mirror_dir):
    result = _cli("tasks", "show", "forget_boolq", env={"LM_FORGET_DATA_DIR": str(mirror_dir)})
    assert result.code != 0
    expected = mirror_dir / "aps" / "super_glue" / "boolq" / "train.jsonl"
    assert str(expected) in result.stderr and "Traceback" not in result.stderr


def test_malformed_row_names_file_and_line(tmp_path, mirror_dir, monkeypatch):
    base = tmp_path / "nyu-mll" / "glue" / "cola"
    base.mkdir(parents=True)
    lines = (mirror_dir / "nyu-mll/glue/cola/train.jsonl").read_text().splitlines(keepends=True)
    lines[6] = lines[6][: len(lines[6]) // 2] + "\n"  # truncate row 7
    (base / "train.jsonl").write_text("".join(lines))
    (base / "validation.jsonl").write_bytes((mirror_dir / "nyu-mll/glue/cola/validation.jsonl").read_bytes())
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"train\.jsonl:7: malformed JSON row"):
        load_task("forget_cola")
    cache = Path(os.environ["LM_FORGET_CACHE"]) / "tasks" / "forget_cola"
    assert not list(cache.rglob("*.jsonl")) or all(".tmp" not in p.name for p in cache.rglob("*"))


def test_row_with_wrong_schema_is_reported(tmp_path, mirror_dir, monkeypatch):
    base = tmp_path / "nyu-mll" / "glue" / "cola"
    base.mkdir(parents=True)
    rows = [json.loads(line) for line in (mirror_dir / "nyu-mll/glue/cola/train.jsonl").read_text().splitlines()]
    for row in rows[:50]:
        row["text"] = row.pop("sentence")
    (base / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:50]))
    (base / "validation.jsonl").write_bytes((mirror_dir / "nyu-mll/glue/cola/validation.jsonl").read_bytes())
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="schema"):
        load_task("forget_cola")


def test_yaml_referencing_a_missing_source_task(tmp_path):
    (tmp_path / "forget_ghost.yaml").write_text(
        "task: forget_ghost\ncustom_dataset: !function lm_forget.data.loader.custom_dataset\n"
        "dataset_kwargs:\n  forget_task: forget_ghost\n  source_task: ghost\n  source_config: /nonexistent/ghost.yaml\n"
    )
    result = _cli("tasks", "show", "forget_ghost", "--task-dir", str(tmp_path))
    assert result.code != 0
    assert "/nonexistent/ghost.yaml" in result.stderr and "derive" in result.stderr


def test_offline_without_mirror_or_cache_says_how_to_get_data(monkeypatch, tmp_path):
    monkeypatch.delenv("LM_FORGET_DATA_DIR", raising=False)
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "LM_FORGET_CACHE": str(tmp_path / "cache")}
    clean = {k: v for k, v in {**os.environ, **env}.items() if k != "LM_FORGET_DATA_DIR"}
    result = subprocess.run([sys.executable, "-m", "lm_forget", "tasks", "build", "forget_rte"], capture_output=True,
                            text=True, env=clean, timeout=300)
    assert result.returncode != 0
    assert "nyu-mll/glue" in result.stderr and "LM_FORGET_DATA_DIR" in result.stderr
    assert "network access" in result.stderr
    assert not list((tmp_path / "cache").rglob("*.jsonl"))


def test_bad_sizes_are_rejected():
    with pytest.raises(ConfigError, match="train_size"):
        load_task("forget_cola", train_size=0)


def test_unknown_cli_command_and_no_traceback():
    result = _cli("taks")
    assert result.code == 2 and "tasks" in result.stderr
