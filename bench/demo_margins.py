"""Margin of the demo's forgetting effect across data seeds and thread counts (docs/reliability.md).

Runs ``lm-forget demo [--quick] --seed S --threads T`` from scratch in a subprocess for every (S, T), as a
user would, and prints a row per family: fine-tuned held-out accuracy with its lower 95 % (Wilson) bound,
and for a forgotten family its forget-set accuracy after forgetting with the TOST near-chance p and verdict,
its held-out accuracy after forgetting and behaviour, the learning-vs-forgetting order correlation and the
relearn verdicts, plus the wall time. The tests assert these with >= 3x margin (docs/reliability.md, "Demo").

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


def report_tables(out: Path) -> tuple[Path, dict[str, dict], dict[str, dict]]:
    """The analyze output of a finished demo, its forget-set rows and its held-out metrics rows, by task."""
    import csv

    (report,) = out.glob("analyze/*/output")
    rows = {r["task"]: r for r in csv.DictReader((report / "protocol" / "forget_set.csv").open())}
    metrics = {}
    for path in report.glob("n*-s*/metrics.csv"):
        metrics.update({r["task"]: r for r in csv.DictReader(path.open()) if r["split"] == "test"})
    return report, rows, metrics


def wilson_low(acc: float, n: int) -> float:
    from scipy.stats import binomtest

    return float(binomtest(round(acc * n), n).proportion_ci(method="wilson").low)


def measure(quick: bool, seed: int, threads: int) -> list[str]:
    """One demo from scratch in a temporary folder: its rows (:func:`summarize`)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        cmd = [sys.executable, "-m", "lm_forget", "demo", "--out", str(out), "--seed", str(seed),
               "--threads", str(threads)] + (["--quick"] if quick else [])
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        return summarize(out, quick, seed, threads, time.perf_counter() - start)


def summarize(out: Path, quick: bool, seed: int, threads: int, wall: float) -> list[str]:
    """A row per family of a finished demo: fine-tuned held-out acc [lower 95 %], and for a forgotten family its
    forget-set acc (TOST p, verdict), held-out after forgetting and behaviour, order rho and relearn verdicts."""
    import csv

    from lm_forget.demo.study import demo_settings

    finetuned = json.loads(next(out.glob("eval_finetuned/*/done.json")).read_text())["scores"]
    forget = scores(out, "eval_forget")
    report, rows, metrics = report_tables(out)
    orders = {}
    for path in report.glob("protocol/dynamics-*/order_stats.csv"):
        orders.update({r["task"]: r for r in csv.DictReader(path.open())})
    relearn = {}
    path = report / "relearn" / "relearn.csv"
    if path.is_file():
        for r in csv.DictReader(path.open()):
            relearn.setdefault(r["task"], []).append(
                f"k{r['k']} {float(r['acc_relearn']):.2f} {r['relearn_verdict']}")
    lines = []
    for task, score in finetuned.items():
        n = demo_settings(quick=quick).eval_size  # every family has at least eval_size items
        acc = score["acc"]
        cells = [f"{acc:.3f} [{wilson_low(acc, n):.3f}]"]
        if task in rows:
            r, m = rows[task], metrics.get(task, {})
            o = orders.get(task, {})
            cells += [f"{float(r['forget_set_forget_acc']):.3f}", f"{float(r['forget_set_p']):.1e} "
                      f"{r['forget_set_verdict']}", f"{forget[task][task]:.3f}", m.get("behaviour", "?"),
                      f"{float(o['spearman']):+.2f} (n={o['n_qualifying']})" if o.get("spearman") else
                      f"undefined (n={o.get('n_qualifying', '?')})", "; ".join(relearn.get(task, []))]
        else:
            cells += ["", "", "", "", "", ""]
        lines.append(f"| {'quick' if quick else 'full'} | {seed} | {threads} | {task} | " + " | ".join(cells)
                     + f" | {wall:.0f} s |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--from", dest="done", nargs=3, action="append", metavar=("DIR", "SEED", "THREADS"),
                        help="summarize a finished demo folder instead of running one (wall time not known)")
    args = parser.parse_args()
    if args.done:
        for folder, seed, threads in args.done:
            for row in summarize(Path(folder), args.quick, int(seed), int(threads), float("nan")):
                print(row, flush=True)
        return
    print("| demo | seed | threads | task | fine-tuned held-out [low] | forget set after | TOST p, verdict | "
          "held-out after | behaviour | order rho | relearn | wall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        for threads in args.threads:
            for row in measure(args.quick, seed, threads):
                print(row, flush=True)


if __name__ == "__main__":
    main()
