"""The render half of ``analyze``: an :class:`AnalysisResults` -> a :class:`Rendered` report (the report's
blocks, the tables, the text files and the matplotlib figures). Nothing is written here:
:mod:`lm_forget.analysis.writer` saves a :class:`Rendered` into the report folder. The report's parts are
registered functions in the ``*_parts`` modules (:mod:`lm_forget.analysis.parts`); :func:`render` writes the
Findings around them, and the Summary of what they return."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_forget.analysis.join import PHASES
from lm_forget.analysis.report import Report
from lm_forget.analysis.results import AnalysisResults

# Choices beyond the paper's definitions, printed in every report (and in docs/analysis.md).
CHOICES = [
    "Accuracy = lm-eval's per-doc `acc` (argmax of summed loglikelihoods); accuracy CIs are Wilson binomial "
    "intervals (a percentile bootstrap of one proportion degenerates at 0/n and n/n).",
    "Forget gap, drop and forget ratios: paired bootstrap intervals over docs (one resample of doc indices "
    "shared by all phases, numpy Generator seeded from a SHA-256 of seed/task/split), percentile intervals.",
    "Chance = mean of 1/n_choices over docs (0.5 for the binarized suite).",
    "Forget ratios are defined only when the fine-tuned accuracy's lower CI bound exceeds chance + "
    "min_denominator; otherwise NaN, the reason in ratio_note, and left out of the tests.",
    "Verdicts are tests that can come out either way at their n, at level alpha against one margin "
    "(options.margin): near chance = TOST of two one-sided exact binomial tests (scipy.stats.binomtest); did not "
    "take = one-sided exact binomial test above chance + margin; behaviours = one-sided paired t-tests of per-doc "
    "differences (scipy.stats.ttest_1samp) against the margin, a category kept until its opposite is shown. A "
    "verdict no outcome at this n could give reads 'needs >= N docs' (lm_forget.analysis.decide).",
    "Confidence = softmax over the two summed loglikelihoods, P(gold); task value = mean over docs.",
    "Task-level predictors and the outcome are all measured on one split (options.split).",
    "Task-level verdicts: one pre-declared primary test per hypothesis (predictor x outcome), Spearman rho with "
    "a two-sided permutation p (scipy.stats.permutation_test, exact when n! <= n_permutations); Pearson and "
    "Kendall are sensitivity rows. Holm / BH over the primary rows only. CIs: paired scipy.stats.bootstrap "
    "(BCa, percentile if BCa is degenerate).",
    "A non-significant rho is called 'no association' only when its CI excludes |rho| >= equivalence_rho; else "
    "'inconclusive', with the simulated power of the primary test to detect rho = power_rho at that n.",
    "Example level: among docs the fine-tuned model gets right, 'forgotten' = wrong after forgetting; "
    "AUC (Mann-Whitney U; primary, corrected over predictor x task) and point-biserial r (bootstrap CI; "
    "sensitivity); with --control, AUC minus the control cell's "
    "AUC (paired bootstrap over docs); without, the association has no baseline.",
    "Cross-task matrix: UPGMA = scipy average linkage on Euclidean distances; variance shares from an additive "
    "two-way sum-of-squares decomposition over the largest complete sub-matrix (emptiest row/column dropped "
    "first), for the forget ratio and for the absolute drop; cell CIs are a binomial parametric bootstrap.",
]


@dataclass
class Rendered:
    """A report before it is written: ``tables`` (stem -> frame, saved as csv, json and md), ``files``
    (relative path -> text), ``figures`` (relative stem -> matplotlib figure, saved in ``formats``) and the
    report's blocks, whose figures are the first format's files."""

    report: Report
    formats: tuple[str, ...]
    tables: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    def figure(self, stem: str, fig: Any, caption: str) -> None:
        """Add ``fig`` (saved as ``stem.<format>``) and its block in the report."""
        self.figures[stem] = fig
        self.report.figure(Path(f"{stem}.{self.formats[0]}"), caption)

    def markdown(self) -> str:
        """The text of ``index.md``."""
        return self.report.to_markdown(self.formats)


def render(res: AnalysisResults, *, features: Path | None = None, matrix: Path | None = None) -> Rendered:
    """The tables, figures and report of ``res`` (``features`` and ``matrix``: the input folders it cites): the
    Findings, then every registered part (:mod:`lm_forget.analysis.parts`) in order, the Summary of the parts'
    lines after the Findings (data problems first) and the choices at the end."""
    from lm_forget.analysis.findings_build import report_findings
    from lm_forget.analysis.parts import PartContext, registered_parts

    opts, phases, joined = res.options, res.phases, res.joined
    report = Report("Forgetting analysis")
    r = Rendered(report, tuple(opts.formats))
    r.files["docs.csv"] = joined.drop(columns=[c for c in joined.columns if c.startswith("loglik_")]).to_csv(
        index=False)
    r.files["options.json"] = json.dumps(opts.to_dict(), indent=2)
    findings = report_findings(res)
    r.files["findings.json"] = findings.to_json()
    report.heading("Findings")
    report.para(f"One line per claim of the paper's abstract. Verdicts: tests at alpha = {opts.alpha} against the "
                f"margin {opts.margin} (accuracy units); intervals {int(opts.confidence_level * 100)}%. Details in "
                "the sections below; the same findings in findings.json.")
    report.bullets([f"{f.title}: {f.text}" for f in findings.items])
    report.para("Inputs: " + "; ".join(f"{n} = {phases[n].root} ({phases[n].model})" for n in PHASES)
                + (f"; features = {features}" if features else "") + (f"; matrix = {matrix}" if matrix else ""))
    summary_at = len(report.blocks)
    ctx = PartContext(res, r, features=features, matrix=matrix)
    lines = [line for part in registered_parts() for line in part.render(ctx)]
    report.heading("Choices beyond the paper's definitions", level=2)
    report.bullets(CHOICES)
    problems = [p for name in PHASES for p in getattr(phases[name], "problems", [])]
    summary = [f"WARNING: {p}" for p in problems] + lines  # data problems lead the summary, never a blank cell alone
    report.blocks[summary_at:summary_at] = [("h", (2, "Summary")), ("ul", summary)]
    return r
