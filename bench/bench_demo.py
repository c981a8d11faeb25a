"""Wall time of ``lm-forget demo`` (the README's main job) on this machine; target <= 5 minutes.

Runs the full demo (and ``--quick``) from scratch in a subprocess, as a user would, then once more on the
finished run dir (everything skipped: the cost of a no-op rerun). Prints the fine-tuned and after-forget
accuracies and the three findings the demo prints (forget set vs held-out, learning/forgetting order,
relearning) so a slow-but-wrong demo does not pass for a fast one.

    python bench/bench_demo.py [--quick-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 300.0


def run(out: Path, quick: bool) -> float:
    cmd = [sys.executable, "-m", "lm_forget", "demo", "--out", str(out)] + (["--quick"] if quick else [])
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def accuracies(out: Path) -> str:
    rows = []
    for stage in ("eval_pretrained", "eval_finetuned", "eval_forget"):
        for done in sorted(out.glob(f"{stage}/*/done.json")):
            record = json.loads(done.read_text())
            label = stage if record.get("cell") is None else f"{stage}[{record['cell'].split('/')[0]}]"
            accs = " ".join(f"{t.removeprefix('demo_')}={s['acc']:.2f}" for t, s in record["scores"].items())
            rows.append(f"    {label}: {accs}")
    return "\n".join(rows)


def findings(out: Path) -> str:
    from lm_forget.demo.findings import findings_lines

    reports = sorted(out.glob("analyze/*/output"))
    return "\n".join(f"    {line}" for report in reports for line in findings_lines(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick-only", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}")
    for quick in ([True] if args.quick_only else [True, False]):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "demo"
            first = run(out, quick)
            again = run(out, quick)
            name = "demo --quick" if quick else "demo"
            verdict = "" if quick else (" (target <= 300 s: " + ("met" if first <= TARGET_S else "MISSED") + ")")
            print(f"lm-forget {name}: {first:.1f} s from scratch{verdict}; rerun (all steps done) {again:.1f} s")
            print(accuracies(out))
            print(findings(out))


if __name__ == "__main__":
    main()
