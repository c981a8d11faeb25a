"""The ``analyze`` step: one analysis per ([method,] forget-set size, replicate), and with several replicates
(forget seeds, fine-tune seeds) one pooled over them: the headline, replicate-averaged task outcomes with a
hierarchical bootstrap (tasks, fine-tune seeds, forget seeds, docs). Then, from those analyses in memory, the
across-seed summary (mean and t-interval of each task's outcome, :mod:`lm_forget.analysis.seeds`), every
registered report section (:mod:`lm_forget.analysis.sections`) and the study's findings, all in one
:class:`~lm_forget.api.study_results.StudyResults`, from which :mod:`lm_forget.analysis.study_index` renders and
writes the report (per-size reports, tables, ``index.md`` and ``index.html``)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_forget.io import atomic_dir
from lm_forget.run.graph import Step

if TYPE_CHECKING:
    from lm_forget.api.study_results import StudyResults


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
    inputs: dict[str, Path] = field(default_factory=dict)  #: the features / matrix folders its report cites

    @property
    def pooled(self) -> bool:
        return self.seed is None

    @property
    def replicate(self) -> int | str:
        """The replicate as tables name it (:func:`lm_forget.run.cells.replicate_name`); pooled reports have none."""
        from lm_forget.run.cells import replicate_name

        assert self.seed is not None, "a pooled report has no replicate"
        return replicate_name(self.seed, self.finetune_seed)

    def row(self) -> dict[str, Any]:
        """Its row in the study's ``reports`` table."""
        return {"label": self.label, "method": self.method, "n": self.n,
                "replicate": None if self.pooled else self.replicate, "pooled": self.pooled}


def per_size_reports(step: Step, plan: Any, options: Any) -> list[Report]:
    """Compute every per-size analysis (replicates, then the pooled one per cell group), in memory."""
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
                reports.append(Report(label, method, n, seed, fs, res, _cited(inputs)))
                group.append((fs, inputs))
            if len(group) > 1:  # the headline: replicate-averaged outcomes, hierarchical bootstrap
                first = group[0][1]
                # one folder per fine-tuned model (the analysis groups replicates by their fine-tuned folder)
                by_seed = {fs: inputs["finetuned"] for fs, inputs in reversed(group)}
                res = compute(pretrained=first["pretrained"], finetuned=[by_seed[fs] for fs, _ in group],
                              forget=[g["forget"] for _, g in group], features=first.get("features"),
                              matrix=first.get("matrix"), options=options)
                reports.append(Report(f"{prefix}n{n}-pooled", method, n, None, None, res, _cited(first)))
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


def study_results(step: Step, plan: Any, out: Path) -> StudyResults:
    """The study's :class:`~lm_forget.api.study_results.StudyResults`, in memory: every per-size analysis, the
    across-seed summary, every registered section (their figures saved under ``out``) and the findings."""
    from lm_forget.analysis.findings_build import report_findings, study_findings
    from lm_forget.analysis.sections import SECTIONS, StudyContext, build_sections, table_frame
    from lm_forget.analysis.study_index import REPORTS_TABLE, SEEDS_TABLE
    from lm_forget.api.study_results import StudyResults
    from lm_forget.run.reach_checks import analysis_options

    config = plan.config
    options = analysis_options(config)
    every = per_size_reports(step, plan, options)
    pooled, reports = [r for r in every if r.pooled], [r for r in every if not r.pooled]
    headline: dict[tuple[str | None, int | None], Any] = {}  # per cell group: pooled, else first replicate
    for r in [*pooled, *reports]:
        headline.setdefault((r.method, r.n), r.results)
    first = (pooled or reports)[0]  # the study's headline report
    sections = build_sections(StudyContext(plan, options, out, headline))
    tables = {REPORTS_TABLE: table_frame([r.row() for r in [*pooled, *reports]])}
    summary = seed_summary(reports, options.outcome, options.confidence_level)
    if summary is not None:
        tables[SEEDS_TABLE] = summary
    for name, data in sections.items():  # every section's tables, by their path under the report
        tables |= {f"{SECTIONS[name].folder}/{stem}": frame for stem, frame in data.tables.items()}
    findings = study_findings(report_findings(first.results), options,
                              **{k: v for data in sections.values() for k, v in data.findings.items()})
    methods = (f"methods: {', '.join(m.id for m in config.forget.method_specs)}" if config.forget.methods
               else f"method: {config.forget.method}")
    seeds = f"forget seeds: {config.forget_seeds}" + (
        f", fine-tune seeds: {config.seeds.finetune}" if config.seeds.finetune is not None else "")
    per_size = {r.label: StudyResults.from_analysis(r.results, **r.inputs) for r in [*pooled, *reports]}
    head = per_size[first.label]
    return StudyResults(
        metrics=head.metrics, tests=head.tests, example_tests=head.example_tests, findings=findings,
        options=head.options, tables=tables, headline=first.label, analysis=first.results, sections=sections,
        reports=per_size,
        title=config.name, description=f"Model: `{config.model.name_or_path}`; {methods}; {seeds}; "
                                       f"forget-set sizes: {config.forget_sizes}.")


def run_analysis(step: Step, ctx: Any) -> dict[str, Any]:
    """The study's results in memory (:func:`study_results`), written as its report."""
    from lm_forget.analysis.study_index import write_study

    with atomic_dir(step.output) as tmp:
        results = study_results(step, ctx.plan, tmp)
        write_study(results, tmp)
    labels = list(results.reports)
    return {"report": str(step.output / labels[0] / "index.md"), "index": str(step.output / "index.md"),
            "index_html": str(step.output / "index.html"),
            "reports": {label: str(step.output / label) for label in labels}}


def _cited(inputs: dict[str, Path]) -> dict[str, Path]:
    return {k: inputs[k] for k in ("features", "matrix") if inputs.get(k) is not None}
