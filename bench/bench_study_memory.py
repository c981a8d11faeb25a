"""Peak memory of a whole study: run `lm-forget run CONFIG [--set ...]` as a user would (a subprocess, the real CLI)
and sample the resident set size (RSS) of its whole process tree -- the runner and any children -- every
``--interval`` seconds with psutil. Reports the peak overall and per study step, the RSS each step started at,
and the wall time.

Which step is running comes from the runner's progress lines (``[i/n] STEP ...`` at a step's start,
``[i/n] STEP: done in Xs`` at its end, printed with flush); samples before the first step are ``(start-up)``
(imports, planning, task indexing), after the last ``(shutdown)``. The RSS of a tree is the sum of its
processes' RSS (shared pages counted once per process; the study runner is one process unless a step spawns
workers). Sampling every 0.5 s can miss a spike shorter than that.

The run dir must be fresh: done steps are skipped and measure nothing (the summary says how many ran). The
``lm-forget`` console script imports the installed package, not the checkout you run from: to measure a
checkout or worktree, put it first on PYTHONPATH (the environment is passed through).

    LM_FORGET_DATA_DIR=../shared/data/hf python bench/bench_study_memory.py configs/study/smollm2_cpu.yaml \\
        --set model.name_or_path=$SMOL --set run_dir=/tmp/smol_rss --json /tmp/smol_rss.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

START = re.compile(r"^\[(\d+)/(\d+)\] (\S+) \.\.\.$")
END = re.compile(r"^\[(\d+)/(\d+)\] (\S+): done in ([0-9.]+)s")
STARTUP, SHUTDOWN = "(start-up)", "(shutdown)"
MIB = 1024 * 1024


def tree_rss(pid: int) -> tuple[int, int]:
    """(summed RSS in bytes, number of processes) of ``pid`` and all its descendants; (0, 0) once it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    total = count = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
            count += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total, count


def lm_forget_command() -> list[str]:
    """The ``lm-forget`` console script beside this interpreter, else on PATH, else ``python -m lm_forget``."""
    beside = Path(sys.executable).with_name("lm-forget")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("lm-forget")
    return [found] if found else [sys.executable, "-m", "lm_forget"]


class StepTracker:
    """Reads the runner's output (tee'd to a log), keeps the step now running and the order steps ran in."""

    def __init__(self, stream, log):
        self.current = STARTUP
        self.order: list[str] = []
        self.seconds: dict[str, float] = {}
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, args=(stream, log), daemon=True)
        self.thread.start()

    def _read(self, stream, log):
        for line in stream:
            if log:
                log.write(line)
                log.flush()
            text = line.rstrip("\n")
            if m := START.match(text):
                with self.lock:
                    self.current = m.group(3)
                    self.order.append(m.group(3))
            elif m := END.match(text):
                with self.lock:
                    self.seconds[m.group(3)] = float(m.group(4))
                    self.current = SHUTDOWN if int(m.group(1)) == int(m.group(2)) else f"(after {m.group(3)})"

    def step(self) -> str:
        with self.lock:
            return self.current


def measure(config: str, sets: list[str], interval: float, log_path: str | None) -> dict:
    cmd = [*lm_forget_command(), "run", config, *[arg for s in sets for arg in ("--set", s)]]
    log = open(log_path, "w", encoding="utf-8") if log_path else None  # noqa: SIM115 (closed below)
    load_before = os.getloadavg()
    started = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    tracker = StepTracker(proc.stdout, log)
    steps: dict[str, dict] = {}
    peak = {"rss": 0, "step": STARTUP, "t": 0.0}
    max_procs = 0
    loads = [load_before[0]]
    samples = 0
    while proc.poll() is None:
        rss, nproc = tree_rss(proc.pid)
        step, t = tracker.step(), time.time() - started
        if nproc:
            samples += 1
            max_procs = max(max_procs, nproc)
            row = steps.setdefault(step, {"start_rss": rss, "peak_rss": 0, "first": t})
            row["peak_rss"] = max(row["peak_rss"], rss)
            row["last"] = t
            if rss > peak["rss"]:
                peak = {"rss": rss, "step": step, "t": round(t, 1)}
        if samples % 20 == 0:
            loads.append(os.getloadavg()[0])
        time.sleep(interval)
    wall = time.time() - started
    tracker.thread.join(timeout=10)
    if log:
        log.close()
    loads.append(os.getloadavg()[0])
    ran = tracker.order
    return {"command": cmd, "returncode": proc.returncode, "wall_s": round(wall, 1), "interval_s": interval,
            "samples": samples, "max_processes": max_procs, "steps_ran": len(ran),
            "peak_mib": round(peak["rss"] / MIB, 1), "peak_step": peak["step"], "peak_at_s": peak["t"],
            "load_1min": {"start": load_before[0], "min": min(loads), "max": max(loads)},
            "steps": [{"step": name, "seconds": tracker.seconds.get(name),
                       "start_mib": round(row["start_rss"] / MIB, 1), "peak_mib": round(row["peak_rss"] / MIB, 1)}
                      for name, row in steps.items()]}


def summary(result: dict) -> str:
    lines = [f"peak RSS of the process tree: {result['peak_mib']:,.0f} MiB, in {result['peak_step']} "
             f"(at {result['peak_at_s']:.0f} s); wall {result['wall_s']:.0f} s for {result['steps_ran']} steps; "
             f"exit {result['returncode']}; at most {result['max_processes']} process(es); load average "
             f"{result['load_1min']['min']:.1f}-{result['load_1min']['max']:.1f}"]
    if result["returncode"]:
        lines.append("the run FAILED: see the log (--log); the peaks below cover what ran")
    if not result["steps_ran"]:
        lines.append("no step ran (a run dir with done steps?): nothing of the study was measured")
    by_stage: dict[str, float] = {}
    for row in result["steps"]:
        name = row["step"]
        stage = name.split("/")[0] if not name.startswith("(") else "(between steps)" if "after" in name else name
        by_stage[stage] = max(by_stage.get(stage, 0.0), row["peak_mib"])
    lines.append("peak per stage (MiB): " + ", ".join(f"{k} {v:,.0f}" for k, v in by_stage.items()))
    width = max(len(r["step"]) for r in result["steps"]) if result["steps"] else 4
    lines.append(f"{'step'.ljust(width)}  {'seconds':>8}  {'start MiB':>9}  {'peak MiB':>8}")
    for row in result["steps"]:
        secs = f"{row['seconds']:.1f}" if row["seconds"] is not None else "-"
        lines.append(f"{row['step'].ljust(width)}  {secs:>8}  {row['start_mib']:>9,.0f}  {row['peak_mib']:>8,.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="study config YAML (as for lm-forget run)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="passed through to lm-forget run (repeatable); set a fresh run_dir")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between RSS samples")
    parser.add_argument("--log", help="write the runner's output here")
    parser.add_argument("--json", help="also write the full result here")
    args = parser.parse_args(argv)
    result = measure(args.config, args.set, args.interval, args.log)
    print(summary(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result["returncode"]


if __name__ == "__main__":
    raise SystemExit(main())
