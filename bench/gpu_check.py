"""The prepared GPU check (run by ``bench/gpu_check.sh`` on a machine with a CUDA GPU, <= 10 minutes).

1. The quick demo study through the real runner on CUDA: model in bfloat16, training precision left to
   ``lm_forget.train.device`` (bf16 where the GPU supports it), evaluation with lm-eval's ``hf`` backend on
   ``cuda``; prints the accuracy table, the resolved precision of every training step and the wall time.
2. The same study's forget adapters evaluated on one loaded base (adapter swapping) vs a base reload per cell,
   i.e. ``ModelPool(swap=True)`` vs ``ModelPool(swap=False)``, timed in the same process.
Writes ``gpu_check.json`` (and the run's report) under ``--out``.

    python bench/gpu_check.py --out "$OUT"
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _study(out: Path, device: str) -> dict:
    import torch
    import yaml

    from lm_forget.demo.study import demo_settings, prepare, run_config
    from lm_forget.run.config import load_run_config
    from lm_forget.run.graph import build_plan
    from lm_forget.run.runner import execute

    settings = demo_settings(quick=True)
    paths = prepare(out / "demo", settings)
    data = run_config(out / "demo", settings, paths)
    if device == "cuda":
        data["model"]["dtype"] = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    data["eval"]["device"] = device
    for section in ("finetune", "forget"):  # let lm_forget.train.device pick bf16 / checkpointing for the GPU
        data[section]["args"] = {k: v for k, v in data[section]["args"].items() if k not in ("bf16", "use_cpu")}
    config_path = out / "gpu_run.yaml"
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    plan = build_plan(load_run_config(config_path))
    started = time.perf_counter()
    summary = execute(plan)
    wall = time.perf_counter() - started
    scores = {s.name: s.done_record().get("scores") for s in plan.steps if s.stage.startswith("eval") and s.is_done()}
    precision = {}
    for step in plan.steps:
        state = Path(step.output) / "forget_config.json" if step.kind == "train" else None
        if state is not None and state.is_file():
            record = json.loads(state.read_text())
            settings_ = record.get("settings", record)
            precision[step.name] = {k: settings_.get(k) for k in ("bf16", "use_cpu", "activation_checkpointing")}
    return {"wall_s": wall, "steps_ran": summary.count("ran"), "scores": scores, "precision": precision,
            "device": torch.cuda.get_device_name(0) if device == "cuda" else device, "torch": torch.__version__}


def _swap_vs_reload(out: Path) -> dict:
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent / "bench_matrix.py"
    proc = subprocess.run([sys.executable, str(bench), "--base", "synthetic", "--no-cli", "--cells", "4"],
                          capture_output=True, text=True, timeout=300)
    return {"returncode": proc.returncode, "output": proc.stdout[-4000:], "stderr": proc.stderr[-2000:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/gpu_check")
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (to try the script here)")
    parser.add_argument("--skip-swap", action="store_true", help="skip the adapter-swap benchmark")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = {"study": _study(out, args.device)}
    if not args.skip_swap:
        result["swap_vs_reload"] = _swap_vs_reload(out)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
