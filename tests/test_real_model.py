"""The real-model tier: SmolLM2-135M-Instruct from its GGUF file, end to end through the real CLIs.

One module fixture runs the chain once (``lm_eval`` on the GGUF base, a LoRA fine-tune with activation
checkpointing, a random-label forget pass, forget-set scoring of both adapters, features, a push to the loopback
Hub); the tests assert on it. Effects asserted are large by construction and were measured at forget seeds 0-2
(docs/reliability.md, "Real-model tier"); ``LM_FORGET_REAL_SEED`` reruns the chain at another seed.

Also the regression test for open-unlearning #178 (LoRA + gradient checkpointing must still train) on stories260K.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TASKS = ["forget_sst2", "forget_arc_easy"]
FORGET_TASK = "forget_sst2"
N_DOCS = 16  #: the forget set: every doc is trained on and scored
SEED = int(os.environ.get("LM_FORGET_REAL_SEED", "0"))
BASE_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  #: the file's metadata names no Hub id: the push says it
TOKEN = "hf_lmforgetREALtoken0123456789secret"
TRAIN_FLAGS = ["--num_examples", str(N_DOCS), "--data", json.dumps({"train_size": N_DOCS}),
               "--per_device_train_batch_size", "8", "--max_steps", "8", "--learning_rate", "2e-3",
               "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0", "--max_length", "128",
               "--save_strategy", "no", "--use_cpu", "true", "--disable_tqdm", "true", "--report_to", "none"]


def _run(args: list[str], env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env}, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args[:4])} failed:\n{proc.stderr[-4000:]}"
    return proc


def _lm_eval(gguf: Path, out: Path, env: dict[str, str], *, peft: Path | None = None, forget_set: bool = False,
             tasks: list[str] = TASKS) -> Path:
    model_args = f"pretrained={gguf.parent},gguf_file={gguf.name},dtype=float32" + (f",peft={peft}" if peft else "")
    extra = (["--metadata", json.dumps({"eval_on": "train", "train_size": N_DOCS})] if forget_set
             else ["--limit", str(N_DOCS)])
    _run([sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args", model_args, "--tasks",
          ",".join(tasks), *extra, "--device", "cpu", "--batch_size", "16", "--output_path", str(out),
          "--log_samples"], env)
    return out


def _samples(out: Path, task: str) -> list[dict]:
    (path,) = out.rglob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _predictions(out: Path, task: str) -> dict[str, int]:
    """doc id -> the choice with the higher log-likelihood."""
    preds = {}
    for record in _samples(out, task):
        lls = [float(resp[0][0]) for resp in record["resps"]]
        preds[record["doc"]["id"]] = max(range(len(lls)), key=lls.__getitem__)
    return preds


@pytest.fixture(scope="module")
def smol(tmp_path_factory, smollm2_gguf, suite_mirror):
    """The whole chain on SmolLM2, run once; yields the paths and the loopback Hub's stored files."""
    from hub_server import HubServer

    root = tmp_path_factory.mktemp("smollm2")
    env = {"LM_FORGET_DATA_DIR": str(suite_mirror), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    model = ["--model", str(smollm2_gguf.parent), "--gguf_file", smollm2_gguf.name]
    train = [sys.executable, "-m", "lm_forget", "train", *model, "--tasks", FORGET_TASK, *TRAIN_FLAGS]
    runs = {"pre": _lm_eval(smollm2_gguf, root / "pre", env)}
    _run([*train, "--stage", "finetune", "--activation_checkpointing", "true", "--seed", "0",
          "--output_dir", str(root / "ft")], env)
    _run([*train, "--stage", "forget", "--init_adapter", str(root / "ft"), "--seed", str(SEED),
          "--output_dir", str(root / "forget")], env)
    for name in ("ft", "forget"):
        runs[f"{name}_set"] = _lm_eval(smollm2_gguf, root / f"{name}_set", env, peft=root / name, forget_set=True,
                                       tasks=[FORGET_TASK])
    _run([sys.executable, "-m", "lm_forget", "features", "--model", str(smollm2_gguf.parent), "--gguf-file",
          smollm2_gguf.name, "--peft", str(root / "forget"), "--tasks", FORGET_TASK, "--limit", "8",
          "--batch-size", "8", "--out", str(root / "features")], env)
    server = HubServer({TOKEN: "alice"}).start()
    try:
        hub_env = {**env, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": server.url, "HF_TOKEN": TOKEN,
                   "HF_HOME": str(root / "hf_home")}
        refused = subprocess.run([sys.executable, "-m", "lm_forget", "push", str(root / "forget"), "alice/smol"],
                                 capture_output=True, text=True, env={**os.environ, **hub_env}, timeout=300)
        _run([sys.executable, "-m", "lm_forget", "push", str(root / "forget"), "alice/smol",
              "--base-model-id", BASE_ID], hub_env)
        stored = server.files("alice/smol")
    finally:
        server.stop()
    yield {"root": root, "runs": runs, "stored": stored, "refused": refused, "gguf": smollm2_gguf}


@pytest.mark.real_model
@pytest.mark.e2e
def test_lm_eval_scores_the_gguf_base_on_two_forget_tasks(smol):
    results = json.loads(next(smol["runs"]["pre"].rglob("results_*.json")).read_text())
    assert results["config"]["model_args"]["gguf_file"] == smol["gguf"].name  # lm-eval parsed it as its argument
    for task in TASKS:
        assert 0.0 <= results["results"][task]["acc,none"] <= 1.0
        records = _samples(smol["runs"]["pre"], task)
        assert len(records) == N_DOCS
        # a real model with a real tokenizer: every choice gets a finite, distinct log-likelihood
        lls = [[float(r[0][0]) for r in rec["resps"]] for rec in records]
        assert all(len(set(pair)) == 2 and all(abs(x) < 1e4 for x in pair) for pair in lls)


@pytest.mark.real_model
@pytest.mark.e2e
def test_lora_with_gradient_checkpointing_trains_on_the_gguf_base(smol):
    """open-unlearning #178: LoRA + activation checkpointing must move the adapter's B matrices off zero."""
    from safetensors.torch import load_file

    state = json.loads((smol["root"] / "ft" / "forget_config.json").read_text())
    assert state["status"] == "done" and state["settings"]["activation_checkpointing"] is True
    assert state["gguf_file"] == smol["gguf"].name and state["gguf"]["quantization"] == "Q4_1"
    tensors = load_file(smol["root"] / "ft" / "adapter_model.safetensors")
    b_mats = [t for name, t in tensors.items() if "lora_B" in name]
    assert b_mats and all(float(t.abs().max()) > 0 for t in b_mats)


@pytest.mark.real_model
@pytest.mark.e2e
def test_forget_pass_overwrites_what_the_fine_tune_learned(smol):
    """Fine-tuning fits the forget set's gold labels; the forget pass then follows its random labels.

    On the docs whose random label is the wrong choice, the fine-tuned adapter picks gold and the forgotten
    one mostly picks the random (wrong) label: gold accuracy there falls (measured: docs/reliability.md).
    """
    labels = {json.loads(line)["id"]: json.loads(line)
              for line in (smol["root"] / "forget" / "labels.jsonl").read_text().splitlines()}
    ft = _predictions(smol["runs"]["ft_set"], FORGET_TASK)
    forget = _predictions(smol["runs"]["forget_set"], FORGET_TASK)
    assert set(ft) == set(forget) == set(labels) and len(labels) == N_DOCS  # scored exactly the forget set
    ft_acc = sum(ft[i] == labels[i]["gold"] for i in labels) / N_DOCS
    flipped = [i for i in labels if labels[i]["label"] != labels[i]["gold"]]
    assert len(flipped) >= 3
    followed = sum(forget[i] == labels[i]["label"] for i in flipped) / len(flipped)
    kept = sum(ft[i] == labels[i]["gold"] for i in flipped) / len(flipped)
    # measured at forget seeds 0-2 (docs/reliability.md): fine-tuned 0.94 (chance + 0.44); drop 0.50-0.89
    assert ft_acc >= 0.5 + 0.125, ft_acc
    assert kept - (1 - followed) >= 0.15, (kept, followed)  # gold accuracy on the flipped docs falls


@pytest.mark.real_model
@pytest.mark.e2e
def test_features_read_the_gguf_base(smol):
    record = json.loads((smol["root"] / "features" / "features.json").read_text())
    assert record["gguf_file"] == smol["gguf"].name and record["peft"] == str(smol["root"] / "forget")
    assert record["tasks"][FORGET_TASK]["n_docs"] == 8
    assert record["n_hidden_states"] == 31  # 30 layers + embeddings: the real SmolLM2 was loaded


@pytest.mark.real_model
@pytest.mark.e2e
def test_pushed_card_names_the_hub_model_and_the_dequantized_gguf(smol):
    from huggingface_hub import ModelCard

    refused = smol["refused"]  # the file's metadata names no Hub id: refused before anything is pushed
    assert refused.returncode == 2 and "--base-model-id" in refused.stderr and "Traceback" not in refused.stderr
    stored = smol["stored"]
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md", "forget_config.json"} <= set(stored)
    card = ModelCard(stored["README.md"].decode())
    assert card.data.base_model == BASE_ID and f"base_model:adapter:{BASE_ID}" in card.data.tags
    assert "dequantized GGUF" in card.text and f"`{smol['gguf'].name}`" in card.text and "(Q4_1)" in card.text
    assert str(smol["gguf"].parent) not in stored["README.md"].decode()  # never a local path
    assert TOKEN.encode() not in b"".join(stored.values())


@pytest.mark.real_model
def test_full_fine_tuning_on_the_gguf_base_saves_plain_safetensors(smollm2_gguf, tmp_path):
    """Full fine-tuning works on a GGUF base: the checkpoint is plain safetensors with no quantization config."""
    from lm_forget.train.api import train
    from lm_forget.train.config import ForgetConfig

    docs = [{"id": f"forget_toy/train/{i}", "task": "forget_toy", "split": "train", "prompt": f"Is {i} even?\nAnswer:",
             "choices": ["no", "yes"], "label": int(i % 2 == 0), "continuation": "", "target_delimiter": " "}
            for i in range(4)]
    out = tmp_path / "full"
    config = ForgetConfig(model=str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name, tasks=["forget_toy"],
                          use_lora=False, max_steps=1, per_device_train_batch_size=4, learning_rate=1e-5,
                          save_strategy="no", use_cpu=True, output_dir=str(out), disable_tqdm=True)
    train(config, docs=docs)
    saved = json.loads((out / "config.json").read_text())
    assert (out / "model.safetensors").is_file() and "quantization_config" not in saved
    assert saved["num_hidden_layers"] == 30


def test_lora_with_gradient_checkpointing_trains_on_stories260k(tiny_model_dir, tmp_path):
    """open-unlearning #178 on stories260K: with activation checkpointing the LoRA B matrices still move."""
    from safetensors.torch import load_file

    from lm_forget.train.api import train
    from lm_forget.train.config import ForgetConfig

    docs = [{"id": f"forget_toy/train/{i}", "task": "forget_toy", "split": "train", "prompt": f"Is {i} even?\nAnswer:",
             "choices": ["no", "yes"], "label": int(i % 2 == 0), "continuation": "", "target_delimiter": " "}
            for i in range(8)]
    config = ForgetConfig(model=str(tiny_model_dir), tasks=["forget_toy"], max_steps=2, per_device_train_batch_size=4,
                          learning_rate=1e-3, lora_r=4, save_strategy="no", use_cpu=True, disable_tqdm=True,
                          activation_checkpointing=True, output_dir=str(tmp_path / "ft"))
    assert config.activation_checkpointing is True
    train(config, docs=docs)
    b_mats = [t for name, t in load_file(tmp_path / "ft" / "adapter_model.safetensors").items() if "lora_B" in name]
    assert b_mats and all(float(t.abs().max()) > 0 for t in b_mats)
