"""``lm-forget demo [--out runs/demo] [--quick] [--deep]``: the whole study, offline on CPU, on an embedded suite."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lm-forget demo",
        description="Offline CPU demo: generate a small suite of binarized task families and a tiny Llama model, "
        "then fine-tune on all families, forget each with random labels, evaluate every pair, extract features "
        "and write the analysis report. Rerunning skips finished steps.",
    )
    parser.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller, faster study (3 families, 1 forget), for tests")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the model (default: 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1, fastest here)")
    parser.add_argument("--methods", default="",
                        help="compare forgetting methods, comma-separated (e.g. random_labels,grad_ascent,npo; "
                        "see docs/methods.md); default: random labels only")
    parser.add_argument("--deep", action="store_true",
                        help="also attack every forgotten model: membership inference (stage mia) and quantization "
                        "(stage eval_quantized, needs bitsandbytes), the report's 'How deep is the forgetting?'")
    return parser


def accuracy_table(plan) -> list[str]:
    """Markdown rows: task | pretrained | fine-tuned | after forgetting X (one column per forget cell)."""
    by_name = plan.by_name
    columns = [("pretrained", by_name.get("eval_pretrained")), ("fine-tuned", by_name.get("eval_finetuned"))]
    columns += [(_forget_label(s.cell), s) for s in plan.steps_for("eval_forget") if s.name.startswith("eval_forget/")]
    columns = [(label, s) for label, s in columns if s is not None and s.is_done()]
    scores = {label: s.done_record().get("scores", {}) for label, s in columns}
    lines = ["| task | " + " | ".join(label for label, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for task in plan.config.tasks.eval:
        cells = [f"{scores[label].get(task, {}).get('acc', float('nan')):.2f}" for label, _ in columns]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return lines


def _forget_label(cell) -> str:
    return f"{cell.method + ': ' if cell.method else ''}forget {cell.task.removeprefix('demo_')}"


def _quiet_libraries() -> None:
    """Progress bars and our own lines only: lm-eval and transformers log every request at INFO."""
    import logging
    import warnings

    for name in ("lm_eval", "transformers", "datasets", "filelock", "peft", "trl", "lm_forget.analysis",
                 "lm_forget.train", "lm_forget.run", "lm_forget.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


def main(argv: list[str]) -> int:
    """Entry point of ``lm-forget demo``."""
    import yaml

    from lm_forget.demo.findings import findings_lines
    from lm_forget.demo.study import demo_settings, prepare, run_config
    from lm_forget.io import atomic_write_text
    from lm_forget.run.cli import _progress
    from lm_forget.run.config import load_run_config
    from lm_forget.run.graph import build_plan
    from lm_forget.run.runner import execute

    args = build_parser().parse_args(argv)
    _quiet_libraries()
    started = time.time()
    out = Path(args.out).resolve()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    settings = demo_settings(quick=args.quick, seed=args.seed, threads=args.threads, methods=methods, deep=args.deep)
    if methods:  # an unknown name fails now, before the suite and the model are written
        from pydantic import ValidationError

        from lm_forget.errors import ConfigError
        from lm_forget.run.config import ForgetSettings

        try:
            ForgetSettings(methods=list(methods))  # the forget section's own checks: registry and parameters
        except ValidationError as exc:
            raise ConfigError(f"--methods: {exc.errors()[0]['msg'].removeprefix('Value error, ')}.") from None
    print(f"lm-forget demo: {'quick ' if args.quick else ''}study of {len(settings.families)} task families "
          f"in {out}" + (f", forgetting methods: {', '.join(methods)}" if methods else "")
          + (", with the how-deep attacks (membership inference, quantization)" if args.deep else ""), flush=True)
    paths = prepare(out, settings)
    config_path = out / "run.yaml"
    atomic_write_text(config_path, yaml.safe_dump(run_config(out, settings, paths), sort_keys=False))
    config = load_run_config(config_path)
    from lm_forget.demo.suite import family_docs
    from lm_forget.run.reach_checks import reach_warnings

    pools = {f"demo_{f}": len(family_docs(f, seed=settings.seed, train_size=settings.train_size,
                                          eval_size=settings.eval_size)["train"]) for f in settings.forget}
    for line in reach_warnings(config, pools):  # before any work (the library's own warning is quieted above)
        print(f"warning: {line}", flush=True)
    plan = build_plan(config)
    summary = execute(plan, on_step=_progress)
    report = next((s for s in plan.steps if s.kind == "analyze" and s.is_done()), None)
    if report is not None:  # findings first
        print("\n" + "\n".join(findings_lines(report.output)))
    print("\naccuracy on held-out docs (chance = 0.50):")
    print("\n".join(accuracy_table(plan)))
    print(f"\n{summary.count('ran')} step(s) ran in {time.time() - started:.0f}s; run config: {config_path}")
    if report is not None:
        print(f"report: {report.done_record().get('report', report.output)}")
        if methods:
            print(f"method comparison: {report.done_record().get('index', report.output)}")
    return 0
