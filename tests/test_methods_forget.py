"""Every registered method drives the forget-set accuracy of the fine-tuned demo model towards chance.

The demo model (lm_forget.demo: a tiny Llama, word-level tokenizer) is fully fine-tuned on three demo families
through ``lm_forget.train.api.train``; each method then forgets ``demo_sentiment`` (32 docs) from that
checkpoint, and lm-eval's own HFLM scores the forget set (accuracy = argmax of the two summed loglikelihoods).
grad_diff and rmu take their retain set from the default: the other two fine-tuned families.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_forget.data.docs import scoring_pair

FORGET_TASK = "demo_sentiment"
FORGET_N = 32
MARGIN = 0.12  # asserted drop in forget-set accuracy; measured drops are >= 3.4x this (see SETTINGS)

#: per method: (learning rate, epochs, --method_args, --retain_weight); tuned once on this model. Measured
#: forget-set accuracy after (fine-tuned: 1.000): random_labels 0.41, flipped_labels 0.03, uniform 0.47,
#: grad_ascent 0.47, grad_diff 0.53, npo 0.34, simnpo 0.34, rmu 0.53 — every drop >= 3.9x MARGIN
SETTINGS = {
    "random_labels": (1e-3, 8, None, None),
    "flipped_labels": (1e-3, 8, None, None),
    "uniform": (1e-3, 8, None, None),
    "grad_ascent": (1e-2, 4, None, None),
    "grad_diff": (1e-2, 4, None, None),
    "npo": (1e-3, 8, {"beta": 0.1}, None),
    "simnpo": (1e-3, 8, {"beta": 2.5}, None),
    # the paper's alpha = 1200 suits Zephyr-7B's hidden norms, not this 64-dim model's
    # measured on 2026-12-02 (transformers 5.24): 0.53 here, and 0.50-0.53 for 8 or 16 epochs, retain weight 1
    # or 10; the earlier 8 epochs with retain weight 10 gave 0.59 on one machine and 0.94 on another (a knife edge)
    "rmu": (1e-2, 16, {"layer": 2, "steering_coeff": 20.0}, 1.0),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from lm_forget.demo.study import demo_settings, prepare
    from lm_forget.train.api import train
    from lm_forget.train.config import ForgetConfig

    root = tmp_path_factory.mktemp("methods")
    # two families, 32 docs each: the forget family and one to retain (kept small: CI has 2 cores)
    settings = demo_settings(quick=True, families=["category", "sentiment"], forget=["sentiment"],
                             train_size=32, eval_size=16, finetune_epochs=20.0)  # the settings SETTINGS were tuned on
    paths = prepare(root, settings)
    tasks = [f"demo_{f}" for f in settings.families]
    ft = root / "ft"
    train(ForgetConfig(model=str(paths["model"]), tasks=tasks, stage="finetune", use_lora=False,
                       task_dirs=[str(paths["tasks"])], num_examples=settings.train_size,
                       learning_rate=settings.finetune_lr, num_train_epochs=settings.finetune_epochs,
                       per_device_train_batch_size=16, lr_scheduler_type="cosine", warmup_steps=0.05,
                       weight_decay=0.0, use_cpu=True, save_strategy="no", disable_tqdm=True,
                       logging_steps=1000, output_dir=str(ft), activation_checkpointing=False))
    return {"root": root, "paths": paths, "ft": ft, "tasks": tasks}


def forget_docs(demo) -> list[dict]:
    from lm_forget.data.api import load_docs

    return load_docs(FORGET_TASK, "train", task_dirs=[demo["paths"]["tasks"]])[:FORGET_N]


def accuracy(model_dir: Path, docs: list[dict]) -> float:
    """Forget-set accuracy as lm-eval scores it (HFLM.loglikelihood on each doc's two requests)."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(model_dir), dtype="float32", device="cpu", batch_size=64)
    requests = [Instance("loglikelihood", doc, scoring_pair(doc, c), idx=c) for doc in docs for c in (0, 1)]
    scores = [ll for ll, _ in lm.loglikelihood(requests, disable_tqdm=True)]
    right = sum(int((scores[2 * i + 1] > scores[2 * i]) == bool(doc["label"])) for i, doc in enumerate(docs))
    return right / len(docs)


def run_method(demo, method: str) -> Path:
    from lm_forget.train.api import train
    from lm_forget.train.config import ForgetConfig

    lr, epochs, args, retain_weight = SETTINGS[method]
    out = demo["root"] / method
    train(ForgetConfig(model=str(demo["paths"]["model"]), tasks=[FORGET_TASK], stage="forget", method=method,
                       method_args=args, retain_weight=retain_weight, init_adapter=str(demo["ft"]), use_lora=False,
                       task_dirs=[str(demo["paths"]["tasks"])], num_examples=FORGET_N, learning_rate=lr,
                       num_train_epochs=epochs, per_device_train_batch_size=16, use_cpu=True, save_strategy="no",
                       disable_tqdm=True, logging_steps=1000, output_dir=str(out), weight_decay=0.0,
                       activation_checkpointing=False))
    return out


@pytest.fixture(scope="module")
def finetuned_accuracy(demo) -> float:
    acc = accuracy(demo["ft"], forget_docs(demo))
    assert acc >= 0.9, f"the demo model did not learn {FORGET_TASK}: forget-set accuracy {acc}"
    return acc


@pytest.mark.e2e
@pytest.mark.parametrize("method", list(SETTINGS))
def test_method_forgets_the_forget_set(demo, finetuned_accuracy, method):
    after = accuracy(run_method(demo, method), forget_docs(demo))
    print(f"{method}: forget-set accuracy {finetuned_accuracy:.3f} -> {after:.3f}")
    assert after <= finetuned_accuracy - MARGIN, f"{method} did not forget: {finetuned_accuracy} -> {after}"


def test_every_registered_method_is_tested():
    from lm_forget.train.methods import method_names

    assert set(method_names()) == set(SETTINGS)
