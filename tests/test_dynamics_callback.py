"""The dynamics callback scores like lm-eval: its per-doc P(gold vs distractor) on the final checkpoint equals
the one computed from ``lm_eval.simple_evaluate`` samples of the saved adapter (real stories260K, real data)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[1]
N = 10


def test_callback_scores_equal_lm_eval_on_the_same_checkpoint(tmp_path, tiny_model_dir, mirror_dir, monkeypatch):
    import json

    import lm_eval

    from lm_forget.harness import task_manager
    from lm_forget.train.api import train
    from lm_forget.train.cli import parse_config
    from lm_forget.train.dataset import load_forget_docs
    from lm_forget.train.dynamics import DYNAMICS_FILE, DynamicsCallback

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    out = tmp_path / "ft"
    config = parse_config(["--config", str(REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml"), "--model",
                           str(tiny_model_dir), "--output_dir", str(out), "--tasks", "forget_cola", "--num_examples",
                           str(N), "--max_steps", "4", "--per_device_train_batch_size", "4", "--save_steps", "50",
                           "--disable_tqdm", "true"])
    docs = load_forget_docs(config)
    callback = DynamicsCallback(docs, None, phase="finetune", every=2, output_dir=out)
    train(config, callbacks=[callback])
    frame = pd.read_parquet(out / DYNAMICS_FILE)
    assert sorted(frame["step"].unique()) == [0, 2, 4]
    assert len(frame) == 3 * N and set(frame["doc_id"]) == {d["id"] for d in docs}
    moved = frame.pivot(index="doc_id", columns="step", values="p_gold")
    assert (moved[4] - moved[0]).abs().max() > 1e-4  # training changed the scores between scorings

    manager = task_manager(include_defaults=False, metadata={"eval_on": "train", "train_size": N})
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={tiny_model_dir},peft={out}",
                                      tasks=["forget_cola"], task_manager=manager, log_samples=True,
                                      batch_size=4, device="cpu", bootstrap_iters=0)
    final = moved[4]
    samples = results["samples"]["forget_cola"]
    assert len(samples) == N
    for row in samples:
        ll = [float(r[0]) for r in row["filtered_resps"]]
        gold = int(row["doc"]["label"])
        p = 1.0 / (1.0 + math.exp(ll[1 - gold] - ll[gold]))
        assert final[row["doc"]["id"]] == pytest.approx(p, abs=1e-5), json.dumps(row["doc"]["id"])
