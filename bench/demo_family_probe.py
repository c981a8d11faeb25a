"""Probe candidate demo families: how a family behaves on its held-out docs after it is forgotten.

Runs the demo's real pipeline (``lm_forget.demo.study``: suite, tiny model, run config, the runner) with custom
settings -- by default the full demo's sizes (512 training docs, all forgotten; 200 held-out docs; fine-tune 8
epochs, forget 12 epochs at 3e-3) but only the families named, without dynamics and relearning (neither changes
the fine-tuned or forgotten models) -- and prints a row per (seed, forgotten family): pretrained, fine-tuned
[lower Wilson 95 %] and after-forgetting held-out accuracy, the forget set's accuracy after forgetting with its
TOST verdict, and the report's behaviour decision (kept / partial / to_pretrained, margin 0.1).

    python bench/demo_family_probe.py --families review parity --forget parity --seeds 0 1 2 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_candidates  # noqa: E402, F401  (registers the candidate families)
from demo_margins import report_tables, scores, wilson_low  # noqa: E402


def run(out: Path, **overrides) -> float:
    """The demo study with ``overrides`` of its settings, run to the end in ``out``; the wall time."""
    import yaml

    from lm_forget.demo.cli import _quiet_libraries
    from lm_forget.demo.study import demo_settings, prepare, run_config
    from lm_forget.io import atomic_write_text
    from lm_forget.run.config import load_run_config
    from lm_forget.run.graph import build_plan
    from lm_forget.run.runner import execute

    _quiet_libraries()
    start = time.perf_counter()
    settings = demo_settings(**overrides)
    paths = prepare(out, settings)
    config_path = out / "run.yaml"
    atomic_write_text(config_path, yaml.safe_dump(run_config(out, settings, paths), sort_keys=False))
    execute(build_plan(load_run_config(config_path)))
    return time.perf_counter() - start


def rows(out: Path, seed: int, wall: float, eval_size: int) -> list[str]:
    """A row per forgotten family of a finished probe."""
    (pretrained,) = scores(out, "eval_pretrained").values()
    (finetuned,) = scores(out, "eval_finetuned").values()
    forget = scores(out, "eval_forget")
    _, verdicts, metrics = report_tables(out)
    lines = []
    for task in sorted(forget):
        acc = finetuned[task]
        v = verdicts.get(task, {})
        lines.append(f"| {seed} | {task} | {pretrained[task]:.3f} | {acc:.3f} [{wilson_low(acc, eval_size):.3f}] | "
                     f"{float(v.get('forget_set_forget_acc', 'nan')):.3f} | {float(v.get('forget_set_p', 'nan')):.1e} "
                     f"{v.get('forget_set_verdict', '?')} | {forget[task][task]:.3f} | "
                     f"{metrics.get(task, {}).get('behaviour', '?')} | "
                     + ", ".join(f"{t.removeprefix('demo_')} {finetuned[t]:.2f}>{a:.2f}"
                                 for t, a in forget[task].items() if t != task) + f" | {wall:.0f} s |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", required=True, help="families fine-tuned on together")
    parser.add_argument("--forget", nargs="+", required=True, help="families forgotten (one forget pass each)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--finetune-epochs", type=float)
    parser.add_argument("--forget-epochs", type=float)
    parser.add_argument("--forget-lr", type=float)
    parser.add_argument("--num-examples", type=int)
    parser.add_argument("--keep", help="keep the run folders under this folder")
    args = parser.parse_args()
    overrides = {"families": args.families, "forget": args.forget, "threads": args.threads, "dynamics_points": 0,
                 "relearn_k": []}
    for name in ("finetune_epochs", "forget_epochs", "forget_lr", "num_examples"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    print(f"settings: {json.dumps({k: v for k, v in overrides.items()})}")
    print("| seed | task | pretrained | fine-tuned [low] | forget set after | TOST p, verdict | held-out after | "
          "behaviour | others: fine-tuned>after | wall |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            out = (Path(args.keep) if args.keep else Path(tmp)) / f"probe-s{seed}"
            wall = run(out, seed=seed, **overrides)
            for line in rows(out, seed, wall, 200):
                print(line, flush=True)


if __name__ == "__main__":
    main()
