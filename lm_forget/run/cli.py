"""``lm-forget run CONFIG [--shard i/n] [--dry-run]``: run (or resume) a whole study from one config."""

from __future__ import annotations

import argparse
import sys

from lm_forget.run.graph import Plan, Step

_MARK = {"done": "done ", "will run": "run  ", "will resume": "resume", "other shard": "other",
         "waits for shards": "wait "}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lm-forget run",
        description="Run a forgetting study from one YAML config: pretrained eval -> fine-tune -> eval -> forget "
        "-> eval -> features -> analysis. Done steps are skipped; an interrupted training step resumes from "
        "its checkpoint.",
    )
    parser.add_argument("config", help="run config YAML (see configs/ and docs/study.md)")
    parser.add_argument("--shard", metavar="I/N", help="run only cells I of N (1-based), e.g. $SLURM_ARRAY_TASK_ID/8")
    parser.add_argument("--dry-run", action="store_true", help="list the steps, which are done, which will run")
    parser.add_argument("--run-dir", help="override the config's run_dir")
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE",
                        help="override one setting, e.g. --set forget.learning_rate=3e-5 --set seeds=[0,1] "
                        "(dotted key, YAML value; repeatable)")
    return parser


def print_plan(rows: list[dict[str, str]], plan: Plan, out=None) -> None:
    """The --dry-run table: status, step, folder (relative to the run dir); ``out`` defaults to the current
    ``sys.stdout`` (looked up at the call, so a redirected stdout gets it)."""
    out = sys.stdout if out is None else out
    root = plan.config.run_path
    width = max(len(r["step"]) for r in rows)
    for row in rows:
        rel = plan.step(row["step"]).dir.relative_to(root)
        print(f"  [{_MARK.get(row['status'], row['status'])}] {row['step'].ljust(width)}  {rel}", file=out)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    print(f"{len(rows)} steps in {root}: " + ", ".join(f"{n} {s}" for s, n in counts.items()), file=out)


def _progress(index: int, total: int, step: Step, event: str) -> None:
    if event == "start":
        print(f"[{index}/{total}] {step.name} ...", flush=True)
    elif event == "skip":
        print(f"[{index}/{total}] {step.name}: waits for the other shards (run without --shard to merge)",
              flush=True)
    else:
        record = step.done_record()
        extra = f", resumed from {record['resumed_from']}" if record.get("resumed_from") else ""
        print(f"[{index}/{total}] {step.name}: done in {record.get('seconds', 0):.1f}s{extra}", flush=True)


def main(argv: list[str]) -> int:
    """Entry point of ``lm-forget run``."""
    from lm_forget.run.config import load_run_config
    from lm_forget.run.graph import build_plan
    from lm_forget.run.runner import execute
    from lm_forget.run.shard import parse_shard

    args = build_parser().parse_args(argv)
    shard = parse_shard(args.shard)  # before the config: a bad --shard fails instantly
    overrides = {"run_dir": args.run_dir} if args.run_dir else None
    config = load_run_config(args.config, overrides=overrides, sets=args.sets)
    plan = build_plan(config)
    if args.dry_run:
        summary = execute(plan, shard=shard, dry_run=True)
        print_plan(summary.rows, plan)
        return 0
    summary = execute(plan, shard=shard, on_step=_progress)
    ran = summary.count("ran")
    print(f"{ran} step(s) ran, {summary.count('done')} already done; results in {config.run_path}")
    report = next((s for s in plan.steps if s.kind == "analyze" and s.is_done()), None)
    if report is not None:
        print(f"report: {report.done_record().get('report', report.output)}")
    return 0
