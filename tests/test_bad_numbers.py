"""Out-of-range numbers and config shapes that fail later: one line, exit 2, before any folder is created.

Before, ``--num_train_epochs 0`` exited 0 with an untrained adapter marked done, ``--learning_rate nan``
trained NaNs, batch size 0 and seed -1 crashed deep in the trainer, ``--n-bootstrap 0`` and
``features --batch-size 0`` raised raw library errors, ``threads: -1`` / ``eval.limit: 0`` /
``forget.num_examples: [8, 8]`` / ``eval.model_args: {pretrained: ...}`` passed ``--dry-run``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_forget.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_CFG = str(REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml")


def refused(argv: list[str], capsys, *needles: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "unexpected" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--learning_rate", "nan", "--learning_rate nan: must be a positive finite number"),
    ("--learning_rate", "0", "--learning_rate 0.0: must be a positive finite number"),
    ("--num_train_epochs", "0", "would train nothing and still be marked done"),
    ("--per_device_train_batch_size", "0", "--per_device_train_batch_size 0: must be a whole number >= 1"),
    ("--gradient_accumulation_steps", "0", "--gradient_accumulation_steps 0: must be a whole number >= 1"),
    ("--seed", "-1", "--seed -1: must be a whole number from 0 to 2**32 - 1"),
])
def test_train_refuses_numbers_that_cannot_train(flag, value, needle, tmp_path, capsys, tiny_model_dir):
    out = tmp_path / "out"
    refused(["train", "--config", TRAIN_CFG, "--model", str(tiny_model_dir), "--tasks", "forget_cola",
             "--num_examples", "8", "--output_dir", str(out), flag, value], capsys, needle)
    assert not out.exists()  # no run folder marked "training"


def test_epochs_zero_is_fine_with_a_step_budget(tiny_model_dir, tmp_path):
    from lm_forget.train.cli import parse_config

    config = parse_config(["--config", TRAIN_CFG, "--model", str(tiny_model_dir), "--tasks", "forget_cola",
                           "--output_dir", str(tmp_path / "o"), "--num_train_epochs", "0", "--max_steps", "3"])
    assert config.max_steps == 3


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--n-bootstrap", "0", "n_bootstrap must be a whole number >= 1, got 0"),
    ("--n-bootstrap", "-5", "n_bootstrap must be a whole number >= 1, got -5"),
    ("--min-denominator", "-1", "min_denominator must be a finite number >= 0"),
    ("--n-permutations", "0", "n_permutations must be a whole number >= 1"),
])
def test_analyze_refuses_out_of_range_options(flag, value, needle, tmp_path, capsys):
    out = tmp_path / "report"
    refused(["analyze", "--pretrained", str(tmp_path), "--finetuned", str(tmp_path), "--forget", str(tmp_path),
             "--out", str(out), flag, value], capsys, needle)
    assert not out.exists()


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--batch-size", "0", "--batch-size 0: must be a whole number >= 1"),
    ("--limit", "0", "--limit 0: must be a whole number >= 1"),
])
def test_features_refuses_out_of_range_numbers(flag, value, needle, tmp_path, capsys, tiny_model_dir):
    out = tmp_path / "feats"
    refused(["features", "--model", str(tiny_model_dir), "--tasks", "forget_cola", "--out", str(out), flag, value],
            capsys, needle)
    assert not out.exists()


STUDY = """\
run_dir: {run_dir}
model: {{name_or_path: {model}}}
tasks: {{finetune: [forget_cola], forget: [forget_cola], eval: [forget_cola]}}
forget: {{num_examples: [8]}}
finetune: {{num_examples: 8}}
"""


@pytest.mark.parametrize(("setting", "needle"), [
    ("threads=-1", "config.threads: Input should be greater than or equal to 1 (got -1)"),
    ("eval.limit=0", "config.eval.limit: 0.0 is neither a number of docs"),
    ("forget.learning_rate=.nan", "config.forget.learning_rate: Input should be a finite number"),
    ("finetune.num_train_epochs=0", "config.finetune.num_train_epochs: Input should be greater than 0"),
    ("finetune.per_device_train_batch_size=0", "config.finetune.per_device_train_batch_size"),
    ("finetune.seed=-1", "config.finetune.seed: Input should be greater than or equal to 0"),
    ("forget.num_examples=[8,8]", "forget.num_examples: [8, 8] has duplicates"),
    ("eval.model_args={pretrained: other/model}", "eval.model_args.pretrained: set by the study runner"),
])
def test_study_refuses_at_dry_run(setting, needle, tmp_path, capsys, tiny_model_dir, mirror_dir, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    cfg = tmp_path / "study.yaml"
    cfg.write_text(STUDY.format(run_dir=tmp_path / "run", model=tiny_model_dir))
    assert main(["run", str(cfg), "--dry-run"]) == 0, capsys.readouterr().err  # the base config is fine
    capsys.readouterr()
    refused(["run", str(cfg), "--dry-run", "--set", setting], capsys, needle)
    refused(["run", str(cfg), "--set", setting], capsys, needle)
    assert not (tmp_path / "run").exists()
