"""The ``analyze`` step: ``analyze`` once per ([method,] forget-set size, replicate), and with several replicates
(forget seeds, fine-tune seeds) once pooled over them: the headline, replicate-averaged task outcomes with a
hierarchical bootstrap (tasks, fine-tune seeds, forget seeds, docs). Also the across-seed summary (mean and 95%
t-interval of each task's outcome, :mod:`lm_forget.analysis.seeds`) and the study's index page (``index.md`` and
the same as ``index.html``, :mod:`lm_forget.analysis.index_html`)."""

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
    for key, report in reports.items():  # (n, seed), or (method, n, seed) with a method axis; seed f<fs>s<s>
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


def write_study_findings(out: Path, headline: Path, options: Any, forget_rows: list[dict[str, Any]],
                         relearn_rows: list[dict[str, Any]], deep_rows: tuple[list, list] = ([], [])) -> list[str]:
    """Write the study's ``findings.json`` under ``out`` (the headline report's findings, the forget-set contrast,
    order and relearning); return the index's Findings section."""
    import pandas as pd

    from lm_forget.analysis.findings import FINDINGS_FILE, Findings
    from lm_forget.analysis.findings_build import study_findings

    report = Findings.read(headline) if (headline / FINDINGS_FILE).is_file() else None
    orders = [(p.parent.name.removeprefix("dynamics-"), pd.read_csv(p))
              for p in sorted((out / "protocol").glob("dynamics-*/order_stats.csv"))]
    findings = study_findings(report, options, protocol=forget_rows, orders=orders, relearn=relearn_rows,
                              deep=deep_rows)
    (out / FINDINGS_FILE).write_text(findings.to_json(), encoding="utf-8")
    return [*findings.markdown(), f"Per-size reports and tables below; these findings as JSON: `{FINDINGS_FILE}`.",
            ""]


def run_analysis(step: Step, ctx: Any) -> dict[str, Any]:
    """``analyze`` once per ([method,] size, replicate), pooled per ([method,] size) over several replicates,
    then the across-seed summary and an index page."""
    from lm_forget.analysis.api import analyze
    from lm_forget.analysis.index_html import write_index_html
    from lm_forget.run.cells import method_axis, replicates, seed_label
    from lm_forget.run.steps.analyze_inputs import assemble_inputs, relearn_cells

    plan, config = ctx.plan, ctx.config
    options = _analysis_options(config)

    reports: dict[tuple[Any, ...], Path] = {}
    pooled: dict[tuple[Any, ...], Path] = {}
    with atomic_dir(step.output) as tmp:
        for spec in method_axis(config):  # one analysis per cell group: [method,] size, replicate
            method = spec.id if spec is not None else None
            prefix = f"{method}-" if method else ""
            for n in config.forget_sizes:
                group = []
                for fs, seed in replicates(config):
                    label = f"{prefix}n{n}-{seed_label(seed, fs)}"
                    # inputs live beside the output (rebuilt on every attempt), so reports cite real paths
                    folder = step.dir / "inputs" / label
                    shutil.rmtree(folder, ignore_errors=True)
                    inputs = assemble_inputs(plan, folder, n, seed, method, fs)
                    report = analyze(pretrained=inputs["pretrained"], finetuned=inputs["finetuned"],
                                     forget=inputs["forget"], out=tmp / label, features=inputs.get("features"),
                                     matrix=inputs.get("matrix"), options=options)
                    key_seed = seed if fs is None else seed_label(seed, fs)
                    reports[(method, n, key_seed) if method else (n, key_seed)] = Path(report)
                    group.append((fs, inputs))
                if len(group) > 1:  # the headline: replicate-averaged outcomes, hierarchical bootstrap
                    first = group[0][1]
                    # one folder per fine-tuned model (the analysis groups replicates by their fine-tuned folder)
                    by_seed = {fs: inputs["finetuned"] for fs, inputs in reversed(group)}
                    pooled[(method, n) if method else (n,)] = Path(analyze(
                        pretrained=first["pretrained"], finetuned=[by_seed[fs] for fs, _ in group],
                        forget=[g["forget"] for _, g in group], out=tmp / f"{prefix}n{n}-pooled",
                        features=first.get("features"), matrix=first.get("matrix"), options=options))
        summary = seed_summary(reports, tmp, options.outcome)
        methods = (f"methods: {', '.join(m.id for m in config.forget.method_specs)}" if config.forget.methods
                   else f"label mode: {config.forget.label_mode}")
        seeds = f"forget seeds: {config.forget_seeds}" + (
            f", fine-tune seeds: {config.seeds.finetune}" if config.seeds.finetune is not None else "")
        lines = [f"# {config.name}", "", f"Model: `{config.model.name_or_path}`; {methods}; {seeds}; "
                 f"forget-set sizes: {config.forget_sizes}.", ""]
        header = len(lines)  # the findings go here, above everything else
        if pooled:
            lines += ["## Pooled over seeds (headline)", "",
                      "Task outcomes averaged over every (fine-tune seed, forget seed) replicate; the task-level "
                      "tests' intervals resample tasks, then fine-tune seeds, then forget seeds, then docs. "
                      "Predictors, the example level and the matrix come from the first replicate; the "
                      "per-replicate reports below are the sensitivity analysis.", ""]
            lines += [f"- [{key[0] + ', ' if len(key) == 2 else ''}forget-set size {key[-1]}, pooled]"
                      f"({label.relative_to(tmp)}/index.md)" for key, label in pooled.items()]
            lines += ["", "## Per replicate", ""]
        lines += [f"- [{key[0] + ', ' if len(key) == 3 else ''}forget-set size {key[-2]}, seed {key[-1]}]"
                  f"({label.relative_to(tmp)}/index.md)" for key, label in reports.items()]
        if summary is not None:
            lines += ["", "## Across seeds", "", (tmp / "seeds_summary.md").read_text(encoding="utf-8")]
        from lm_forget.analysis.protocol_report import protocol_rows, write_dynamics_section, write_protocol_section
        from lm_forget.run.steps.protocol_inputs import dynamics_inputs, protocol_cells

        forget_rows: list[dict[str, Any]] = []  # every forget-set row, for the findings
        relearn_rows: list[dict[str, Any]] = []
        if not config.forget.methods:
            forget_rows = protocol_rows(protocol_cells(plan), options)
            lines += ["", *write_protocol_section([], tmp / "protocol", options, rows=forget_rows)]
        else:  # one protocol table per method (its rows would not say which method they are)
            from lm_forget.analysis.methods_report import write_methods_section
            from lm_forget.run.steps.protocol_inputs import method_protocol_cells

            cells = method_protocol_cells(plan)
            for spec in config.forget.method_specs:
                rows = protocol_rows([c for m, c in cells if m == spec.id], options)
                forget_rows += [dict(r, task=f"{spec.id}: {r['task']}") for r in rows]
                section = write_protocol_section([], tmp / "protocol" / spec.id, options, rows=rows, index_dir=tmp)
                lines += ["", f"{section[0]}: {spec.id}", *section[1:]] if section else []
        lines += write_dynamics_section(dynamics_inputs(plan), tmp / "protocol")
        if config.forget.methods:
            from lm_forget.analysis.methods_predictors import write_predictor_section

            lines += write_methods_section(cells, tmp / "methods")
            headline: dict[tuple[str, int], Path] = {}  # per (method, size): pooled report, else first replicate
            for key, folder in [*pooled.items(), *reports.items()]:
                headline.setdefault((key[0], key[1]), folder)
            lines += write_predictor_section(headline, tmp / "methods", options)
        if "eval_relearn" in config.stages:
            from lm_forget.analysis.relearn_report import cell_row, write_relearn_section

            relearn_rows = [cell_row(c, options) for c in relearn_cells(plan)]
            lines += ["", *write_relearn_section([], tmp / "relearn", options, rows=relearn_rows)]
        if config.tasks.utility and "eval_forget" in config.stages:
            from lm_forget.analysis.utility_report import write_utility_section
            from lm_forget.run.utility_steps import utility_cells

            lines += ["", *write_utility_section(utility_cells(plan), tmp / "utility", level=options.confidence_level,
                                                 n_bootstrap=options.n_bootstrap)]
        deep: tuple[list, list] = ([], [])
        if {"mia", "eval_quantized", "eval_formats"} & set(config.stages):
            from lm_forget.analysis.deep_report import deep_rows, write_deep_section
            from lm_forget.run.deep_steps import deep_cells

            cells_deep = deep_cells(plan)
            deep = deep_rows(cells_deep, options)
            lines += ["", *write_deep_section(cells_deep, tmp / "deep", options, rows=deep)]
        first = next(iter((pooled or reports).values())).name  # the headline report
        lines[header:header] = [*write_study_findings(tmp, tmp / first, options, forget_rows, relearn_rows, deep)]
        (tmp / "index.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        write_index_html(tmp, "\n".join(lines) + "\n")  # the same page as HTML, figures inline
    return {"report": str(step.output / first / "index.md"), "index": str(step.output / "index.md"),
            "index_html": str(step.output / "index.html"),
            "reports": {p.name: str(step.output / p.name) for p in [*pooled.values(), *reports.values()]}}
