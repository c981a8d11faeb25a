"""A damaged study folder is named, with the fix: "step X is incomplete: ... Delete its folder and rerun."

Before, a truncated ``done.json`` raised a bare JSONDecodeError naming no file, and a ``done.json`` beside
missing or cut-off adapter weights (an interrupted ``rsync``) was trusted, then reported as a bad
``--init_adapter``. A real two-step study (stories260K fine-tuned on real CoLA docs, then evaluated) is damaged
after it finished; the step that depends on the damaged one refuses to start, and nothing else is touched.
"""

from __future__ import annotations

import pytest
import yaml

from lm_forget.cli import main

TRAIN = {"use_lora": True, "learning_rate": 1e-3, "max_steps": 1, "per_device_train_batch_size": 4,
         "lora_r": 4, "lora_alpha": 8, "save_steps": 50, "max_length": 128, "num_examples": 8}


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_model_dir, mirror_dir):
    root = tmp_path_factory.mktemp("damaged")
    cfg = root / "study.yaml"
    cfg.write_text(yaml.safe_dump({
        "run_dir": str(root / "run"), "model": {"name_or_path": str(tiny_model_dir), "dtype": "float32"},
        "tasks": {"finetune": ["forget_cola"], "eval": ["forget_cola"]},
        "stages": ["finetune", "eval_finetuned"], "data": {"train_size": 40, "eval_size": 8},
        "finetune": TRAIN, "eval": {"batch_size": 8}, "threads": 1}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
        assert main(["run", str(cfg)]) == 0
        yield {"cfg": cfg, "run": root / "run"}


def _rerun_eval(study, capsys) -> str:
    for eval_done in study["run"].glob("eval_finetuned/*/done.json"):
        eval_done.unlink()  # the dependent step has to run again, and checks what it depends on
    code = main(["run", str(study["cfg"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in "\n".join(err) and not list(study["run"].glob("eval_finetuned/*/done.json"))
    return err[-1]


def test_truncated_done_json_is_named(study, capsys, monkeypatch, mirror_dir):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    (done,) = study["run"].glob("finetune/*/done.json")
    text = done.read_text()
    done.write_text(text[: len(text) // 2])
    try:
        err = _rerun_eval(study, capsys)
    finally:
        done.write_text(text)
    assert f"step finetune is incomplete: {done} is damaged (JSONDecodeError" in err
    assert f"Delete its folder ({done.parent}) and rerun." in err


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_done_json_beside_missing_or_cut_weights(study, capsys, monkeypatch, mirror_dir, damage):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    (weights,) = study["run"].glob("finetune/*/output/adapter_model.safetensors")
    data = weights.read_bytes()
    if damage == "missing":
        weights.unlink()
    else:
        weights.write_bytes(data[: len(data) - 100])
    try:
        err = _rerun_eval(study, capsys)
    finally:
        weights.write_bytes(data)
    assert "step finetune is incomplete: its trained weights in" in err
    assert ("no model or adapter weights" if damage == "missing" else "adapter_model.safetensors is truncated") in err
    assert "Delete its folder" in err and "--init_adapter" not in err


def test_an_undamaged_study_resumes(study, capsys, monkeypatch, mirror_dir):
    """The checks pass a whole step: once repaired, the dependent step runs (and only it)."""
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    for eval_done in study["run"].glob("eval_finetuned/*/done.json"):
        eval_done.unlink()
    assert main(["run", str(study["cfg"])]) == 0
    assert "1 step(s) ran, 1 already done" in capsys.readouterr().out
