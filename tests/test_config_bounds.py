"""Configs that would never end (YAML alias bombs, self-referencing aliases, 50,000 nested lists) are refused
with one line and exit 2 before validation -- and before any folder exists.

Before the bound, ``lm-forget run --dry-run`` on the alias bomb below ran until memory was gone (pydantic
expands the shared lists); a 50,000-deep nesting raised a raw RecursionError.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_forget.cli import main
from lm_forget.errors import ConfigError
from lm_forget.limits import MAX_NODES, check_value, load_json, load_yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_CFG = REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml"

# nine levels of ten aliases each: 10**9 items from 11 short lines
BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in text.splitlines())


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def assert_one_line(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err


@pytest.fixture
def study(tmp_path, tiny_model_dir):
    def write(extra: str) -> Path:
        path = tmp_path / "study.yaml"
        path.write_text(f"run_dir: {tmp_path / 'run'}\nmodel: {{name_or_path: {tiny_model_dir}}}\n"
                        "tasks: {eval: [forget_cola]}\nstages: [eval_pretrained]\n" + extra)
        return path
    return write


def test_alias_bomb_in_a_study_is_refused(study, tmp_path, capsys, mirror_dir, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    cfg = study("eval:\n  wandb_args:\n" + _indent(BOMB, 4))
    code, err = run(["run", str(cfg), "--dry-run"], capsys)
    assert_one_line(code, err, f"expands to more than {MAX_NODES:,} items")
    assert str(cfg) in err
    code, err = run(["run", str(cfg)], capsys)
    assert_one_line(code, err, "expands to more than")
    assert not (tmp_path / "run").exists()


def test_self_reference_and_deep_nesting_in_a_study(study, tmp_path, capsys):
    code, err = run(["run", str(study("eval:\n  wandb_args: &w {again: *w}\n")), "--dry-run"], capsys)
    assert_one_line(code, err, "a YAML alias refers to a value that contains it")
    deep = "eval:\n  wandb_args: {x: " + "[" * 50_000 + "]" * 50_000 + "}\n"
    code, err = run(["run", str(study(deep)), "--dry-run"], capsys)
    assert_one_line(code, err, "nests more than 64 levels deep")
    code, err = run(["run", str(study("")), "--dry-run", "--set", "eval.wandb_args.x=" + "[" * 50_000 + "]" * 50_000],
                    capsys)
    assert_one_line(code, err, "--set 'eval.wandb_args.x=[[[")
    assert not (tmp_path / "run").exists()


def test_alias_bomb_in_a_training_config(tmp_path, capsys, tiny_model_dir):
    cfg = tmp_path / "train.yaml"
    out = tmp_path / "out"
    cfg.write_text(TRAIN_CFG.read_text() + f"\nmodel: {tiny_model_dir}\noutput_dir: {out}\ntasks: [forget_cola]\n"
                   "stage: forget\nmethod: npo\nmethod_args:\n" + _indent(BOMB, 2))
    code, err = run(["train", "--config", str(cfg)], capsys)
    assert_one_line(code, err, "expands to more than")
    assert str(cfg) in err
    assert not out.exists()


def test_deep_json_flags_of_train(tmp_path, capsys, tiny_model_dir):
    deep = "[" * 50_000 + "]" * 50_000
    base = ["train", "--config", str(TRAIN_CFG), "--model", str(tiny_model_dir), "--tasks", "forget_cola",
            "--output_dir", str(tmp_path / "out")]
    code, err = run([*base, "--stage", "forget", "--method", "npo", "--method_args", '{"beta": ' + deep + "}"], capsys)
    assert_one_line(code, err, "--method_args: nests more than 64 levels deep")
    code, err = run([*base, "--data", '{"seed": ' + deep + "}"], capsys)
    assert_one_line(code, err, "--data: nests more than 64 levels deep")
    assert not (tmp_path / "out").exists()


def test_limits_count_aliases_without_expanding_them():
    # within the bounds: a config with ordinary aliases loads as before
    assert load_yaml("a: &x [1, 2]\nb: *x\n", "c.yaml") == {"a": [1, 2], "b": [1, 2]}
    assert load_json('{"beta": [1, [2]]}', "--method_args") == {"beta": [1, [2]]}
    shared = ["x"] * 10
    for _ in range(6):  # 10**6 items through shared lists, built instantly
        shared = [shared] * 10
    with pytest.raises(ConfigError, match="expands to more than"):
        check_value({"args": shared}, "--method_args")
    with pytest.raises(ConfigError, match="expands to more than"):
        load_yaml(BOMB, "bomb.yaml")
