"""Kill ``lm-forget run`` in the middle of the forget step; the rerun resumes it, skips finished steps, and
ends with exactly the results of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lm_forget.demo.study import demo_settings, prepare, run_config

pytestmark = pytest.mark.e2e

STAGES = ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget"]


def _write_config(tmp_path: Path, shared: dict[str, Path], settings, run_dir: Path) -> Path:
    data = run_config(run_dir, settings, shared)
    data["stages"] = STAGES
    # a forget pass long enough to be killed in: 20 epochs (80 steps on the quick demo), a checkpoint every 2
    data["forget"]["num_train_epochs"] = 20
    data["forget"].update(save_steps=2, logging_steps=2)
    path = tmp_path / f"{run_dir.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(config: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lm_forget", "run", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def _done(run_dir: Path, stage: str) -> dict:
    (path,) = run_dir.glob(f"{stage}/*/done.json")
    return json.loads(path.read_text())


def _samples(run_dir: Path) -> dict[str, list[float]]:
    """doc id -> per-choice loglikelihoods of the forget model's eval, from lm-eval's samples files."""
    found = {}
    for path in run_dir.glob("eval_forget/*/output/*/samples_*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            found[row["doc"]["id"]] = [float(r[0][0]) for r in row["resps"]]
    return found


def test_kill_during_forget_then_resume_matches_uninterrupted(tmp_path):
    settings = demo_settings(quick=True, finetune_epochs=8.0, dynamics_points=0, relearn_k=[], train_size=64,
                             eval_size=32, num_examples=64)  # the first quick demo's sizes: 80 forget steps
    shared = prepare(tmp_path / "shared", settings)

    reference_dir = tmp_path / "reference"
    reference = _run(_write_config(tmp_path, shared, settings, reference_dir))
    out, _ = reference.communicate(timeout=280)
    assert reference.returncode == 0, out[-3000:]

    run_dir = tmp_path / "killed"
    config = _write_config(tmp_path, shared, settings, run_dir)
    proc = _run(config, start_new_session=True)
    deadline = time.time() + 240
    checkpoint = None
    while time.time() < deadline and proc.poll() is None:
        # a complete checkpoint (its last file written); a later one may be cut mid-write by the kill
        found = list(run_dir.glob("forget/*/output/checkpoints/checkpoint-*/trainer_state.json"))
        if found:
            checkpoint = found[0]
            break
        time.sleep(0.05)
    assert checkpoint is not None, "the forget step never wrote a checkpoint"
    os.killpg(proc.pid, signal.SIGKILL)  # a crash: no cleanup, no done.json
    proc.communicate(timeout=30)
    (forget_dir,) = [p for p in run_dir.glob("forget/*") if p.is_dir()]
    assert not (forget_dir / "done.json").exists(), "killed too late: the forget step had finished"
    finished_before = {p: p.stat().st_mtime_ns for p in run_dir.glob("*/*/done.json")}
    # the forget-set scoring of the pretrained and fine-tuned models (eval_forgetset) runs before the forget step
    assert {p.parts[-3] for p in finished_before} == {"eval_pretrained", "finetune", "eval_finetuned", "eval_forgetset"}

    dry = subprocess.run([sys.executable, "-m", "lm_forget", "run", str(config), "--dry-run"],
                         capture_output=True, text=True, timeout=120)
    assert "[resume] forget/" in dry.stdout and "[done ] finetune" in dry.stdout, dry.stdout

    rerun = _run(config)
    out, _ = rerun.communicate(timeout=280)
    assert rerun.returncode == 0, out[-3000:]
    assert "resumed from checkpoint-" in out
    # forget, eval_forget and the forget cell's forget-set eval ran; the 5 finished ones (evals of the pretrained
    # and fine-tuned models on held-out and forget-set docs, and the fine-tune) were skipped
    assert f"3 step(s) ran, {len(finished_before)} already done" in out and len(finished_before) == 5
    for path, mtime in finished_before.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was redone"

    resumed, uninterrupted = _done(run_dir, "forget"), _done(reference_dir, "forget")
    assert resumed["resumed_from"] and not uninterrupted["resumed_from"]
    steps = 20 * -(-settings.num_examples // settings.batch_size)  # 20 epochs (see _write_config)
    assert resumed["global_step"] == uninterrupted["global_step"] == steps
    assert resumed["labels_hash"] == uninterrupted["labels_hash"]
    assert _done(run_dir, "eval_forget")["scores"] == _done(reference_dir, "eval_forget")["scores"]
    ours, theirs = _samples(run_dir), _samples(reference_dir)
    assert ours.keys() == theirs.keys() and ours
    worst = max(abs(a - b) for k in ours for a, b in zip(ours[k], theirs[k], strict=True))
    assert worst < 1e-4, f"per-choice loglikelihoods differ by up to {worst}"
