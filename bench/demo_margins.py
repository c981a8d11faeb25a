"""Margin of the demo's forgetting effect across data seeds and thread counts (docs/reliability.md).

Runs ``lm-forget demo [--quick] --seed S --threads T`` from scratch in a subprocess for every (S, T), as a
user would, and prints, per forgotten family, fine-tuned accuracy, after-forget accuracy and the margin
(fine-tuned - after forget) on its held-out docs, plus the wall time. The quick demo's test asserts a drop
of more than 0.1 on ``demo_sentiment``; the margin should be >= 3x that everywhere.

    python bench/demo_margins.py [--quick] [--seeds 0 1 2] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def scores(out: Path, stage: str) -> dict[str, dict]:
    """{cell or "": {task: acc}} of one eval stage."""
    found = {}
    for done in sorted(out.glob(f"{stage}/*/done.json")):
        record = json.loads(done.read_text())
        found[(record.get("cell") or "").split("/")[0]] = {t: s["acc"] for t, s in record["scores"].items()}
    return found


def measure(quick: bool, seed: int, threads: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        cmd = [sys.executable, "-m", "lm_forget", "demo", "--out", str(out), "--seed", str(seed),
               "--threads", str(threads)] + (["--quick"] if quick else [])
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
        finetuned = scores(out, "eval_finetuned")[""]
        rows = []
        for cell, accs in scores(out, "eval_forget").items():
            margin = finetuned[cell] - accs[cell]
            rows.append(f"| {'quick' if quick else 'full'} | {seed} | {threads} | {cell} | {finetuned[cell]:.3f} | "
                        f"{accs[cell]:.3f} | {margin:+.3f} | {wall:.0f} s |")
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print("| demo | seed | threads | forgotten | fine-tuned acc | after forget | margin | wall |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        for threads in args.threads:
            for row in measure(args.quick, seed, threads):
                print(row, flush=True)


if __name__ == "__main__":
    main()
