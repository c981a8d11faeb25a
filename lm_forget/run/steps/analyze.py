"""The ``analyze`` step: ``analyze`` once per ([method,] forget-set size, seed), the across-seed summary (mean and
95% t-interval of each task's outcome, :mod:`lm_forget.analysis.seeds`) and the study's index page."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from lm_forget.io import atomic_dir
from lm_forget.run.graph import Step


def _analysis_options(config: Any):
    from lm_forget.analysis.api import AnalysisOptions

    options = dict(config.analysis.options)
    if config.forget.label_mode == "flip" and not config.forget.methods:
        options.setdefault("outcome", "forget_ratio_flipped")
    if "formats" in options:
        options["formats"] = tuple(options["formats"])
    return AnalysisOptions(**options)


def seed_summary(reports: dict[tuple[Any, ...], Path], out: Path, outcome: str) -> Path | None:
    """Mean and 95% t-interval across seeds of each task's outcome (per forget-set size), written to ``out``."""
    import pandas as pd

    from lm_forget.analysis.seeds import seed_table

    frames = []
    for key, report in reports.items():  # (n, seed), or (method, n, seed) with a method axis
        method, n, seed = key if len(key) == 3 else (None, *key)
        path = report / "metrics.csv"
        if path.is_file():
            frame = pd.read_csv(path)
            frames.append(frame.assign(num_examples=n, seed=seed, **({"method": method} if method else {})))
    if not frames:
        return None
    summary = seed_table(pd.concat(frames, ignore_index=True), outcome)
    summary.to_csv(out / "seeds_summary.csv", index=False)
    (out / "seeds_summary.md").write_text(summary.to_markdown(index=False) + "\n", encoding="utf-8")
    return out / "seeds_summary.csv"


def run_analysis(step: Step, ctx: Any) -> dict[str, Any]:
    """``analyze`` once per (forget-set size, seed), then the across-seed summary and an index page."""
    from lm_forget.analysis.api import analyze
    from lm_forget.run.cells import method_axis
    from lm_forget.run.steps.analyze_inputs import assemble_inputs, relearn_cells

    plan, config = ctx.plan, ctx.config
    options = _analysis_options(config)

    reports: dict[tuple[Any, ...], Path] = {}
    with atomic_dir(step.output) as tmp:
        for spec in method_axis(config):  # one analysis per cell group: [method,] size, seed
            method = spec.id if spec is not None else None
            for n in config.forget_sizes:
                for seed in config.seeds:
                    label = f"{method + '-' if method else ''}n{n}-s{seed}"
                    # inputs live beside the output (rebuilt on every attempt), so reports cite real paths
                    folder = step.dir / "inputs" / label
                    shutil.rmtree(folder, ignore_errors=True)
                    inputs = assemble_inputs(plan, folder, n, seed, method)
                    report = analyze(pretrained=inputs["pretrained"], finetuned=inputs["finetuned"],
                                     forget=inputs["forget"], out=tmp / label, features=inputs.get("features"),
                                     matrix=inputs.get("matrix"), options=options)
                    reports[(method, n, seed) if method else (n, seed)] = Path(report)
        summary = seed_summary(reports, tmp, options.outcome)
        methods = (f"methods: {', '.join(m.id for m in config.forget.method_specs)}" if config.forget.methods
                   else f"label mode: {config.forget.label_mode}")
        lines = [f"# {config.name}", "", f"Model: `{config.model.name_or_path}`; {methods}; seeds: {config.seeds}; "
                 f"forget-set sizes: {config.forget_sizes}.", ""]
        lines += [f"- [{key[0] + ', ' if len(key) == 3 else ''}forget-set size {key[-2]}, seed {key[-1]}]"
                  f"({label.relative_to(tmp)}/index.md)" for key, label in reports.items()]
        if summary is not None:
            lines += ["", "## Across seeds", "", (tmp / "seeds_summary.md").read_text(encoding="utf-8")]
        from lm_forget.analysis.protocol_report import write_dynamics_section, write_protocol_section
        from lm_forget.run.steps.protocol_inputs import dynamics_inputs, protocol_cells

        if not config.forget.methods:
            lines += ["", *write_protocol_section(protocol_cells(plan), tmp / "protocol")]
        else:  # one protocol table per method (its rows would not say which method they are)
            from lm_forget.analysis.methods_report import write_methods_section
            from lm_forget.run.steps.protocol_inputs import method_protocol_cells

            cells = method_protocol_cells(plan)
            for spec in config.forget.method_specs:
                section = write_protocol_section([c for m, c in cells if m == spec.id], tmp / "protocol" / spec.id)
                lines += ["", f"{section[0]}: {spec.id}", *section[1:]] if section else []
        lines += write_dynamics_section(dynamics_inputs(plan), tmp / "protocol")
        if config.forget.methods:
            lines += write_methods_section(cells, tmp / "methods")
        if "eval_relearn" in config.stages:
            from lm_forget.analysis.relearn_report import write_relearn_section

            lines += ["", *write_relearn_section(relearn_cells(plan), tmp / "relearn", level=options.confidence_level,
                                                 n_bootstrap=options.n_bootstrap,
                                                 min_denominator=options.min_denominator)]
        (tmp / "index.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = next(iter(reports.values())).name
    return {"report": str(step.output / first / "index.md"), "index": str(step.output / "index.md"),
            "reports": {p.name: str(step.output / p.name) for p in reports.values()}}
