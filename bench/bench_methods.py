"""Forgetting methods: training throughput of each lm-forget method vs plain `transformers.Trainer` with the
same loss written by hand, and peak memory relative to `random_labels`.

Same model (stories260K + LoRA r=8 on all linear layers), same forget docs (forget_cola) and retain docs
(forget_sst2), same batch size, seed and step count. Every measurement runs in its own subprocess (peak RSS is
per process), alternating lm-forget / baseline so machine load hits both alike. The baseline is what a user
writes by hand: a `Trainer` subclass whose `compute_loss` does a full-vocabulary log_softmax + gather, and for
npo / rmu a frozen deep copy of the starting model whose forward runs every step (lm-forget computes the same
reference once up front: that cost is counted in its wall time too, as part of building the trainer).

    LM_FORGET_DATA_DIR=../shared/data/hf python bench/bench_methods.py [--methods npo,rmu] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOSS_METHODS = ("uniform", "grad_ascent", "grad_diff", "npo", "simnpo", "rmu")
RMU_ARGS = {"layer": 2, "steering_coeff": 20.0}


def _docs(args):
    from lm_forget.data.api import load_docs

    forget = load_docs(args.task, "train")[: args.num_examples]
    retain = load_docs(args.retain_task, "train")[: args.num_examples]
    return forget, retain


def _lora_model(args):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    return get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))


def _training_args(args, cls, out: str, **extra):
    return cls(output_dir=out, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
               learning_rate=1e-4, use_cpu=True, bf16=False, save_strategy="no", logging_steps=100000,
               report_to="none", disable_tqdm=True, seed=0, dataloader_num_workers=0,
               remove_unused_columns=False, **extra)


def run_lm_forget(args, method_name: str, out: str) -> float:
    """Build and train lm-forget's trainer for ``method_name``; returns samples/s (trainer build included)."""
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from lm_forget.train.dataset import build_examples, to_sft_dataset
    from lm_forget.train.labels import assign_labels
    from lm_forget.train.methods import get_method
    from lm_forget.train.methods.data import MethodCollator, method_dataset, method_rows

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    forget, retain = _docs(args)
    method = get_method(method_name)
    model = _lora_model(args)
    sft = _training_args(args, SFTConfig, out, completion_only_loss=True, activation_checkpointing=False)
    start = time.perf_counter()
    if method.is_label_rule:
        rows = build_examples(forget, assign_labels(forget, method.label_mode, 0))
        trainer = SFTTrainer(model=model, args=sft, train_dataset=to_sft_dataset(rows, tokenizer),
                             processing_class=tokenizer)
    else:
        kept = retain if method.retain != "none" else []
        rows = method_rows(forget, kept, tokenizer, both_choices=method.both_choices)
        sft.dataset_kwargs = {"skip_prepare_dataset": True}
        trainer = method.trainer(model=model, args=sft, train_dataset=method_dataset(rows),
                                 processing_class=tokenizer, data_collator=MethodCollator(tokenizer.eos_token_id),
                                 method_params=method.parse_params(RMU_ARGS if method_name == "rmu" else {}),
                                 retain_weight=method.retain_weight(None, bool(kept)))
    trainer.train()
    return args.steps * args.batch_size / (time.perf_counter() - start)


def _hand_loss(method: str, logits, batch, frozen_model=None, hidden=None):
    """The method's loss written the plain way (full log_softmax, per-role masks, a frozen model's forward)."""
    import math

    import torch
    import torch.nn.functional as F

    logp_tok = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    mask = batch["completion_mask"][:, 1:].float()
    logp = (logp_tok * mask).sum(-1)
    role = batch["role"]
    forget, alt, retain = logp[role == 0], logp[role == 1], logp[role == 2]
    nll_r = -retain.mean() if retain.numel() else logp.new_zeros(())
    if method == "grad_ascent":
        return forget.mean()
    if method == "grad_diff":
        return forget.mean() + nll_r
    if method == "uniform":
        lp = torch.log_softmax(torch.stack([forget, alt], -1), -1)
        return (-math.log(2) - lp.mean(-1)).mean()
    if method == "simnpo":
        return -(2 / 2.5) * F.logsigmoid(-(2.5 / mask[role == 0].sum(-1)) * forget).mean()
    with torch.no_grad():
        ref = frozen_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           output_hidden_states=method == "rmu")
    if method == "npo":
        ref_lp = torch.log_softmax(ref.logits[:, :-1].float(), -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
        ref_forget = (ref_lp * mask).sum(-1)[role == 0]
        return (2 / 0.1) * F.softplus(0.1 * (forget - ref_forget)).mean()
    # rmu
    h, h_ref = hidden[RMU_ARGS["layer"] + 1], ref.hidden_states[RMU_ARGS["layer"] + 1]
    am = batch["attention_mask"].float()[..., None]
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(h.shape[-1], generator=gen)
    control = RMU_ARGS["steering_coeff"] * u / u.norm()
    f, r = role == 0, role == 2
    loss_f = (((h[f] - control) ** 2) * am[f]).sum() / (am[f].sum() * h.shape[-1])
    loss_r = (((h[r] - h_ref[r]) ** 2) * am[r]).sum() / (am[r].sum() * h.shape[-1])
    return loss_f + 1200.0 * loss_r


def run_plain(args, method_name: str, out: str) -> float:
    """transformers.Trainer + get_peft_model + the hand-written loss (and frozen copy) on the same batches."""
    import copy

    from transformers import AutoTokenizer, Trainer, TrainingArguments

    from lm_forget.train.methods import get_method
    from lm_forget.train.methods.data import MethodCollator, method_dataset, method_rows

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    forget, retain = _docs(args)
    method = get_method(method_name)
    model = _lora_model(args)
    start = time.perf_counter()
    frozen = None
    if method_name in ("npo", "rmu"):
        frozen = copy.deepcopy(model).eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
    if method_name == "rmu":  # train only the MLPs of layers 0..2, like lm-forget
        for name, p in model.named_parameters():
            p.requires_grad_(p.requires_grad and ".mlp." in name and any(f"layers.{i}." in name for i in (0, 1, 2)))

    class HandTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                            output_hidden_states=method_name == "rmu")
            loss = _hand_loss(method_name, outputs.logits, inputs, frozen, outputs.hidden_states)
            return (loss, outputs) if return_outputs else loss

    kept = retain if method.retain != "none" else []
    rows = method_rows(forget, kept, tokenizer, both_choices=method.both_choices)
    trainer = HandTrainer(model=model, args=_training_args(args, TrainingArguments, out),
                          train_dataset=method_dataset(rows), data_collator=MethodCollator(tokenizer.eos_token_id))
    trainer.model_accepts_loss_kwargs = False
    trainer.train()
    return args.steps * args.batch_size / (time.perf_counter() - start)


def one(args) -> None:
    """Child process: one measurement, printed as JSON."""
    import logging

    import torch

    torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as out:
        fn = run_plain if args.impl == "plain" else run_lm_forget
        rate = fn(args, args.one, out)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples_per_s": rate, "peak_rss_mb": peak_mb}))


def measure(args, method: str, impl: str) -> dict:
    cmd = [sys.executable, __file__, "--one", method, "--impl", impl, "--model", args.model, "--task", args.task,
           "--retain-task", args.retain_task, "--num-examples", str(args.num_examples), "--batch-size",
           str(args.batch_size), "--steps", str(args.steps), "--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ})
    if done.returncode:
        raise SystemExit(f"{method}/{impl} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[2] / "shared/models/stories260K"))
    parser.add_argument("--task", default="forget_cola")
    parser.add_argument("--retain-task", default="forget_sst2")
    parser.add_argument("--num-examples", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default=",".join(LOSS_METHODS))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="lm-forget", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(args)
    methods = [m for m in args.methods.split(",") if m]
    runs: dict[str, dict[str, list[dict]]] = {m: {"lm-forget": [], "plain": []} for m in ["random_labels", *methods]}
    for _ in range(args.repeats):
        runs["random_labels"]["lm-forget"].append(measure(args, "random_labels", "lm-forget"))
        for method in methods:
            runs[method]["lm-forget"].append(measure(args, method, "lm-forget"))
            runs[method]["plain"].append(measure(args, method, "plain"))
    med = {m: {impl: {k: statistics.median(r[k] for r in rs) for k in ("samples_per_s", "peak_rss_mb")}
               for impl, rs in by.items() if rs} for m, by in runs.items()}
    base = med["random_labels"]["lm-forget"]
    table = {}
    for method in methods:
        ours, plain = med[method]["lm-forget"], med[method]["plain"]
        table[method] = {
            "samples_per_s": round(ours["samples_per_s"], 1),
            "plain_samples_per_s": round(plain["samples_per_s"], 1),
            "ratio_vs_plain": round(ours["samples_per_s"] / plain["samples_per_s"], 3),
            "speed_vs_random_labels": round(ours["samples_per_s"] / base["samples_per_s"], 3),
            "peak_rss_mb": round(ours["peak_rss_mb"]), "peak_vs_random_labels":
                round(ours["peak_rss_mb"] / base["peak_rss_mb"], 3),
        }
    print(json.dumps({"setup": vars(args), "random_labels": base, "methods": table, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
