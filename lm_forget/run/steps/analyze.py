"""The ``analyze`` step: one analysis per ([method,] forget-set size, replicate), and with several replicates
(forget seeds, fine-tune seeds) one pooled over them: the headline, replicate-averaged task outcomes with a
hierarchical bootstrap (tasks, fine-tune seeds, forget seeds, docs). Then, from those analyses in memory, the
across-seed summary (mean and t-interval of each task's outcome, :mod:`lm_forget.analysis.seeds`), every
registered report section (:mod:`lm_forget.analysis.sections`), the study's findings and its index page
(``index.md`` and the same as ``index.html``, :mod:`lm_forget.analysis.index_html`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_forget.io import atomic_dir
from lm_forget.run.graph import Step


@dataclass
class Report:
    """One per-size analysis of the study: its folder, cell group ([method,] size), replicate (forget seed and
    fine-tune seed; None: pooled over replicates) and results in memory."""

    label: str
    method: str | None
    n: int | None
    seed: int | None
    finetune_seed: int | None
    results: Any

    @property
    def pooled(self) -> bool:
        return self.seed is None

    @property
    def replicate(self) -> int | str:
        """The replicate as tables name it (:func:`lm_forget.run.cells.replicate_name`); pooled reports have none."""
        from lm_forget.run.cells import replicate_name

        assert self.seed is not None, "a pooled report has no replicate"
        return replicate_name(self.seed, self.finetune_seed)

    def link(self) -> str:
        what = f"{self.method + ', ' if self.method else ''}forget-set size {self.n}"
        return f"- [{what}, {'pooled' if self.pooled else f'seed {self.replicate}'}]({self.label}/index.md)"


def _write(res: Any, folder: Path, inputs: dict[str, Path]) -> None:
    from lm_forget.analysis.render import render
    from lm_forget.analysis.writer import close_figures, save_rendered

    rendered = render(res, features=inputs.get("features"), matrix=inputs.get("matrix"))
    try:
        save_rendered(rendered, folder)
    finally:
        close_figures(rendered)


def per_size_reports(step: Step, plan: Any, options: Any, tmp: Path) -> list[Report]:
    """Compute and write every per-size analysis (replicates, then the pooled one per cell group)."""
    from lm_forget.analysis.api import compute
    from lm_forget.run.cells import method_axis, replicates, seed_label
    from lm_forget.run.steps.analyze_inputs import assemble_inputs

    config = plan.config
    reports: list[Report] = []
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
                res = compute(pretrained=inputs["pretrained"], finetuned=inputs["finetuned"],
                              forget=inputs["forget"], features=inputs.get("features"),
                              matrix=inputs.get("matrix"), options=options)
                _write(res, tmp / label, inputs)
                reports.append(Report(label, method, n, seed, fs, res))
                group.append((fs, inputs))
            if len(group) > 1:  # the headline: replicate-averaged outcomes, hierarchical bootstrap
                first = group[0][1]
                # one folder per fine-tuned model (the analysis groups replicates by their fine-tuned folder)
                by_seed = {fs: inputs["finetuned"] for fs, inputs in reversed(group)}
                res = compute(pretrained=first["pretrained"], finetuned=[by_seed[fs] for fs, _ in group],
                              forget=[g["forget"] for _, g in group], features=first.get("features"),
                              matrix=first.get("matrix"), options=options)
                _write(res, tmp / f"{prefix}n{n}-pooled", first)
                reports.append(Report(f"{prefix}n{n}-pooled", method, n, None, None, res))
    return reports


def seed_summary(reports: list[Report], outcome: str, level: float) -> Any:
    """Mean and t-interval across seeds of each task's outcome (per [method,] forget-set size); None with one
    replicate per cell group."""
    import pandas as pd

    from lm_forget.analysis.seeds import seed_table

    frames = [r.results.metrics_all.assign(num_examples=r.n, seed=r.replicate,
                                           **({"method": r.method} if r.method else {}))
              for r in reports if not r.pooled]
    return seed_table(pd.concat(frames, ignore_index=True), outcome, level) if frames else None


def run_analysis(step: Step, ctx: Any) -> dict[str, Any]:
    """The per-size analyses, the across-seed summary, every registered section, the findings and the index."""
    from lm_forget.analysis.findings import FINDINGS_FILE
    from lm_forget.analysis.findings_build import report_findings, study_findings
    from lm_forget.analysis.index_html import write_index_html
    from lm_forget.analysis.sections import StudyContext, write_sections
    from lm_forget.run.reach_checks import analysis_options

    plan, config = ctx.plan, ctx.config
    options = analysis_options(config)
    with atomic_dir(step.output) as tmp:
        every = per_size_reports(step, plan, options, tmp)
        pooled, reports = [r for r in every if r.pooled], [r for r in every if not r.pooled]
        headline: dict[tuple[str | None, int | None], Any] = {}  # per cell group: pooled, else first replicate
        for r in [*pooled, *reports]:
            headline.setdefault((r.method, r.n), r.results)
        first = (pooled or reports)[0]  # the study's headline report
        methods = (f"methods: {', '.join(m.id for m in config.forget.method_specs)}" if config.forget.methods
                   else f"method: {config.forget.method}")
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
                      "per-replicate reports below are the sensitivity analysis.", "",
                      *(r.link() for r in pooled), "", "## Per replicate", ""]
        lines += [r.link() for r in reports]
        summary = seed_summary(reports, options.outcome, options.confidence_level)
        if summary is not None:
            summary.to_csv(tmp / "seeds_summary.csv", index=False)
            lines += ["", "## Across seeds", "", summary.to_markdown(index=False), ""]
        sections = write_sections(StudyContext(plan, options, tmp, headline))
        lines += sections.lines
        findings = study_findings(report_findings(first.results), options, **sections.findings)
        (tmp / FINDINGS_FILE).write_text(findings.to_json(), encoding="utf-8")
        lines[header:header] = [*findings.markdown(), "Per-size reports and tables below; these findings as "
                                f"JSON: `{FINDINGS_FILE}`.", ""]
        text = "\n".join(lines) + "\n"
        (tmp / "index.md").write_text(text, encoding="utf-8")
        write_index_html(tmp, text)  # the same page as HTML, figures inline
    return {"report": str(step.output / first.label / "index.md"), "index": str(step.output / "index.md"),
            "index_html": str(step.output / "index.html"),
            "reports": {r.label: str(step.output / r.label) for r in [*pooled, *reports]}}
