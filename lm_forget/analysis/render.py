"""The render half of ``analyze``: an :class:`AnalysisResults` -> a :class:`Rendered` report (the report's
blocks, the tables, the text files and the matplotlib figures). Nothing is written here:
:mod:`lm_forget.analysis.writer` saves a :class:`Rendered` into the report folder."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_forget.analysis import plots
from lm_forget.analysis.control import NO_BASELINE
from lm_forget.analysis.join import PHASES
from lm_forget.analysis.metrics import BEHAVIOURS
from lm_forget.analysis.report import Report, fmt
from lm_forget.analysis.results import AnalysisResults
from lm_forget.analysis.verdicts import summary_lines, verdict

OUTCOME_LABELS = {"forget_ratio": "forget ratio (random labels)",
                  "forget_ratio_flipped": "forget ratio (flipped labels)",
                  "forget_gap": "forget gap (acc_forget - chance)"}

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


def interval_table(metrics):
    """The metrics table for the report: every estimate as "value [low, high]"."""
    import pandas as pd

    def cell(row, name):
        return f"{fmt(row[name])} [{fmt(row[name + '_lo'])}, {fmt(row[name + '_hi'])}]"

    names = ["acc_pretrained", "acc_finetuned", "acc_forget", "forget_gap", "forget_drop", "forget_ratio",
             "forget_ratio_flipped"]
    seed = ["seed"] if "seed" in metrics else []
    rows = [{"task": r["task"], "split": r["split"], "n": r["n"]} | {k: r[k] for k in seed}
            | {k: cell(r, k) for k in names}
            | {"behaviour": r["behaviour"] + (f" ({r['behaviour_candidates']})" if r["behaviour"] == "inconclusive"
                                              or r["behaviour"].startswith("needs") else ""),
               "at_chance": r["at_chance"], "ratio_note": r["ratio_note"]}
            for _, r in metrics.iterrows()]
    return pd.DataFrame(rows)


def _render_matrix(res: AnalysisResults, r: Rendered) -> list[str]:
    from lm_forget.analysis import matrix as mx

    ratios, long, dec = res.matrix_ratios, res.matrix_long, res.matrix_decomposition
    row_order, col_order, row_link, col_link = mx.upgma_order(ratios)
    report = r.report
    r.files["matrix_long.csv"] = long.to_csv(index=False)
    r.files["matrix_forget_ratio.csv"] = ratios.loc[row_order, col_order].to_csv()
    summary = dec["forget_ratio"] | {k: v for k, v in dec.items() if k != "forget_ratio"}  # ratio shares on top
    r.files["matrix_summary.json"] = json.dumps(summary, indent=2)
    report.heading("Cross-task forgetting matrix")
    fig = plots.matrix_heatmap(ratios, row_order, col_order, row_link=row_link, col_link=col_link)
    r.figure("figures/matrix_heatmap", fig, "Forget ratio of the evaluated task (columns) after forgetting the row "
                                            "task; rows and columns ordered by UPGMA; per-cell CIs in the table below")
    report.table(long.assign(forget_ratio_ci=[f"[{fmt(a)}, {fmt(b)}]" for a, b in
                                              zip(long["forget_ratio_lo"], long["forget_ratio_hi"], strict=True)],
                             forget_drop_ci=[f"[{fmt(a)}, {fmt(b)}]" for a, b in
                                             zip(long["forget_drop_lo"], long["forget_drop_hi"], strict=True)])
                 [["trained_task", "eval_task", "n", "acc_finetuned", "acc_forget", "forget_drop", "forget_drop_ci",
                   "forget_ratio", "forget_ratio_ci", "ratio_note"]])
    lines = mx.decomposition_lines(dec)
    report.bullets(lines)
    return lines


def _render_control(res: AnalysisResults, r: Rendered) -> list[str]:
    from lm_forget.analysis.control import control_lines

    report = r.report
    r.tables["control_flip_by_decile"] = res.control_deciles
    r.tables["control_excess"] = res.control_excess
    report.heading("Example level against a control cell (no targeted forgetting)")
    report.para(f"Control: {res.control}. Flip rate = share of fine-tuned-correct docs wrong after the forget "
                "pass (forget) or after the control pass (control), by decile of the fine-tuned confidence "
                f"(Wilson {int(res.options.confidence_level * 100)}% CIs).")
    report.table(res.control_deciles)
    report.para("AUC of each example-level predictor for 'forgotten', under forgetting and under the control, and "
                "the excess (difference; paired bootstrap over docs).")
    report.table(res.control_excess)
    lines = control_lines(res.control_excess, res.options)
    report.bullets(lines)
    return lines


def _model_accuracy(metrics, role: str, task: str) -> float:
    """The model's own accuracy beside a probe: phase roles, and ``forget-<task>`` on its own task."""
    phase = "forget" if role == f"forget-{task}" else role
    row = metrics[metrics["task"] == task]
    col = f"acc_{phase}"
    return float(row[col].iloc[0]) if col in row and len(row) else math.nan


def render(res: AnalysisResults, *, features: Path | None = None, matrix: Path | None = None) -> Rendered:
    """The tables, figures and report of ``res`` (``features`` and ``matrix``: the input folders it cites)."""
    opts, phases, joined, metrics_all, metrics = res.options, res.phases, res.joined, res.metrics_all, res.metrics
    values, tests, example_tests, feature_sets = res.values, res.tests, res.example_tests, res.feature_sets
    report = Report("Forgetting analysis")
    r = Rendered(report, tuple(opts.formats))
    r.tables["metrics"] = metrics_all
    if len(tests):
        r.tables["tests_task_level"] = tests
    if len(example_tests):
        r.tables["tests_example_level"] = example_tests
    r.files["docs.csv"] = joined.drop(columns=[c for c in joined.columns if c.startswith("loglik_")]).to_csv(
        index=False)
    r.files["options.json"] = json.dumps(opts.to_dict(), indent=2)

    from lm_forget.analysis.findings_build import report_findings, tasks_needed

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
    report.heading("Accuracies and forgetting metrics")
    report.para(f"Behaviours (tests at alpha = {opts.alpha}, margin = {opts.margin}): kept = {BEHAVIOURS['kept']}; "
                f"to_pretrained = {BEHAVIOURS['to_pretrained']}; partial = {BEHAVIOURS['partial']}; inconclusive = "
                f"{BEHAVIOURS['inconclusive']}; needs >= N docs = {BEHAVIOURS['needs >= N docs']}. at_chance: near "
                f"chance = TOST (two one-sided exact binomial tests) of acc_forget within chance +- {opts.margin}; "
                f"did not take = shown above chance + {opts.margin}. Ratios need the fine-tuned accuracy's lower "
                f"CI bound above chance + {opts.min_denominator}. Cells: value [low, high].")
    report.table(interval_table(metrics_all))
    r.figure("figures/accuracy_bars", plots.accuracy_bars(metrics),
             f"Accuracy per task on the {opts.split} docs: pretrained / fine-tuned / after forgetting "
                  "(95% Wilson CI; dashed: chance)")
    r.figure("figures/confidence_hist", plots.confidence_histograms(joined[joined["split"] == opts.split]),
             "P(correct vs distractor) per doc, by phase (dashed: 0.5)")

    report.heading("Predictors of forgetting (task level)")
    report.para(f"Outcome: {OUTCOME_LABELS[opts.outcome]} on the {opts.split} docs, one point per task. "
                f"Primary test (the verdict): Spearman; Pearson and Kendall are sensitivity rows. p = two-sided "
                f"permutation p (exact for small n), min_p = smallest attainable p at this n, CI = bootstrap "
                f"{int(opts.confidence_level * 100)}% interval; p_holm / p_bh corrected over the primary rows "
                f"(one per hypothesis); power = power to detect rho = {opts.power_rho}; equivalence bound "
                f"|rho| = {opts.equivalence_rho}.")
    primary = tests[tests["role"] == "primary"] if len(tests) else tests
    ran = [verdict(row, opts) not in ("not tested", "not testable") for _, row in primary.iterrows()]
    if len(tests) and not any(ran):  # a table of dashes says less than one line
        report.para(f"No task-level test could run: needs >= {tasks_needed(len(primary), opts)} tasks "
                    f"(this report has {int(primary['n'].max())}); every row is in tests_task_level.csv.")
    elif len(tests):
        report.table(tests[["predictor", "method", "role", "n", "statistic", "ci_low", "ci_high", "ci_method", "p",
                            "min_p", "p_holm", "p_bh", "power", "equivalence", "note"]])
    if len(tests):  # the data of each hypothesis, tested or not
        outcome = res.outcome
        pooled = res.n_seeds > 1  # error bars: the per-task doc-bootstrap CI (one seed only)
        for pv in (v for v in values if v.level == "task"):
            g = tests[(tests["predictor"] == pv.name) & tests["role"].isin(["primary", "sensitivity"])]
            g = g.set_index("method")
            ann = "; ".join(f"{sym} = {fmt(g.loc[m, 'statistic'], 2)} (p = {fmt(g.loc[m, 'p'], 2)})"
                            for m, sym in (("pearson", "r"), ("spearman", "ρ")) if m in g.index)
            ann = ann.replace("— (p = —)", "not tested") or "not tested"
            tasks = list(outcome)
            lo = dict(zip(metrics["task"], metrics[f"{opts.outcome}_lo"], strict=True))
            hi = dict(zip(metrics["task"], metrics[f"{opts.outcome}_hi"], strict=True))
            fig = plots.predictor_scatter([pv.values.get(t, math.nan) for t in tasks],
                                          [outcome[t] for t in tasks], tasks, xlabel=pv.name,
                                          yerr=None if pooled else ([lo[t] for t in tasks], [hi[t] for t in tasks]),
                                          ylabel=OUTCOME_LABELS[opts.outcome], annotation=ann)
            r.figure(f"figures/scatter_{pv.name}", fig,
                     f"{OUTCOME_LABELS[opts.outcome]} vs {pv.name}: {pv.description}")
    if len(example_tests):
        report.heading("Predictors of forgetting (example level, within task)")
        report.para("Docs the fine-tuned model answers correctly; forgotten = wrong after forgetting. "
                    "AUC > 0.5: forgotten docs have higher values of the predictor. "
                    + ("Compared against the control cell below." if res.control else NO_BASELINE))
        report.table(example_tests[["predictor", "task", "method", "role", "n_forgotten", "n_kept", "statistic",
                                    "ci_low", "ci_high", "p", "p_holm", "p_bh", "note"]])

    if feature_sets:
        import pandas as pd

        feats = pd.DataFrame([{"role": fs["role"], "task": task, "split": fs["split"], "layer": int(layer),
                               "primary": int(layer) == int(fs["primary_layer"]), "n_docs": v["n_docs"],
                               "variance": value}
                              for fs in feature_sets for task, v in fs["tasks"].items()
                              for layer, value in v["variance"].items()])
        r.tables["features"] = feats
        report.heading("Hidden-state variance features")
        report.para("Trace of the covariance across docs of the hidden state at the prompt's last token "
                    "(hidden_states index; 0 = embeddings). The primary layer feeds the variance predictor.")
        report.table(feats[feats["primary"]].drop(columns="primary"))

    matrix_lines = _render_matrix(res, r) if matrix else []
    control_lines_ = _render_control(res, r) if res.control else [NO_BASELINE]

    probes = [dict(p, role=fs["role"]) for fs in feature_sets for p in fs.get("probes", [])]
    if probes:
        import pandas as pd

        probe_table = pd.DataFrame(probes)
        probe_table["model_acc"] = [_model_accuracy(metrics, role, task)
                                    for role, task in zip(probe_table["role"], probe_table["task"], strict=True)]
        model_acc = {role: float(g["model_acc"].mean()) for role, g in probe_table.groupby("role")}
        r.tables["probes"] = probe_table
        report.heading("Linear probes (is forgetting shallow?)")
        report.para("L2 logistic probes with early stopping on the last-token hidden state of (question, answer) "
                    "pairs, trained on the forget-pool docs and tested on the held-out docs; probe_doc_acc picks "
                    "the answer the probe scores higher (chance 0.5), comparable to model accuracy.")
        report.table(probe_table[[c for c in ("role", "task", "layer", "probe_doc_acc", "probe_pair_acc",
                                              "model_acc", "n_train_pairs", "n_test_pairs") if c in probe_table]])
        r.figure("figures/probe_by_layer", plots.probe_by_layer(probe_table, model_acc),
                 "Probe accuracy by layer (mean over tasks); dotted: the model's own accuracy")

    report.heading("Choices beyond the paper's definitions", level=2)
    report.bullets(CHOICES)
    if len(tests) and not any(ran):
        summary = [f"Task-level predictors: not testable here: needs >= {tasks_needed(len(primary), opts)} tasks "
                   f"(this report has {int(primary['n'].max())})."]
    else:
        summary = summary_lines(tests, opts)
    summary += matrix_lines + control_lines_
    counts = metrics["behaviour"].map(lambda w: "needs >= N docs" if str(w).startswith("needs") else w
                                      ).value_counts().to_dict()
    undefined = int((metrics["ratio_note"] != "").sum())
    summary.insert(0, "Behaviours on the " + opts.split + " docs (from tests at the margin): "
                   + ", ".join(f"{k}: {counts.get(k, 0)}" for k in BEHAVIOURS) + f" (of {len(metrics)} tasks)."
                   + (f" Forget ratio undefined for {undefined} task(s) (see ratio_note)." if undefined else ""))
    problems = [p for name in PHASES for p in getattr(phases[name], "problems", [])]
    summary[:0] = [f"WARNING: {p}" for p in problems]  # data problems lead the summary, never a blank cell alone
    report.blocks[summary_at:summary_at] = [("h", (2, "Summary")), ("ul", summary)]
    return r
