"""The per-size report's parts on the forgetting metrics and their predictors: the accuracies table and figures
(with the Summary's behaviours line), the task-level predictor tests with one scatter per predictor (and their
verdict lines), and the example-level tests within task."""

from __future__ import annotations

import math
from typing import Any

from lm_forget.analysis import plots
from lm_forget.analysis.control import NO_BASELINE
from lm_forget.analysis.metrics import BEHAVIOURS
from lm_forget.analysis.parts import PartContext, register_part
from lm_forget.analysis.report import fmt
from lm_forget.analysis.verdicts import summary_lines, verdict

OUTCOME_LABELS = {"forget_ratio": "forget ratio (random labels)",
                  "forget_ratio_flipped": "forget ratio (flipped labels)",
                  "forget_gap": "forget gap (acc_forget - chance)"}


def interval_table(metrics: Any) -> Any:
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


@register_part("accuracies", order=10)
def accuracies(ctx: PartContext) -> list[str]:
    """The metrics table (every phase's accuracy and the forgetting metrics, with intervals), the accuracy bars
    and the confidence histograms; the Summary's line counts the behaviours."""
    res, r, opts = ctx.res, ctx.rendered, ctx.options
    metrics = res.metrics
    r.tables["metrics"] = res.metrics_all
    report = r.report
    report.heading("Accuracies and forgetting metrics")
    report.para(f"Behaviours (tests at alpha = {opts.alpha}, margin = {opts.margin}): kept = {BEHAVIOURS['kept']}; "
                f"to_pretrained = {BEHAVIOURS['to_pretrained']}; partial = {BEHAVIOURS['partial']}; inconclusive = "
                f"{BEHAVIOURS['inconclusive']}; needs >= N docs = {BEHAVIOURS['needs >= N docs']}. at_chance: near "
                f"chance = TOST (two one-sided exact binomial tests) of acc_forget within chance +- {opts.margin}; "
                f"did not take = shown above chance + {opts.margin}. Ratios need the fine-tuned accuracy's lower "
                f"CI bound above chance + {opts.min_denominator}. Cells: value [low, high].")
    report.table(interval_table(res.metrics_all))
    r.figure("figures/accuracy_bars", plots.accuracy_bars(metrics, level=opts.confidence_level),
             f"Accuracy per task on the {opts.split} docs: pretrained / fine-tuned / after forgetting "
             f"({opts.confidence_level:.0%} Wilson CI; dashed: chance)")
    r.figure("figures/confidence_hist", plots.confidence_histograms(res.joined[res.joined["split"] == opts.split]),
             "P(correct vs distractor) per doc, by phase (dashed: 0.5)")
    counts = metrics["behaviour"].map(lambda w: "needs >= N docs" if str(w).startswith("needs") else w
                                      ).value_counts().to_dict()
    undefined = int((metrics["ratio_note"] != "").sum())
    return ["Behaviours on the " + opts.split + " docs (from tests at the margin): "
            + ", ".join(f"{k}: {counts.get(k, 0)}" for k in BEHAVIOURS) + f" (of {len(metrics)} tasks)."
            + (f" Forget ratio undefined for {undefined} task(s) (see ratio_note)." if undefined else "")]


@register_part("task_predictors", order=20)
def task_predictors(ctx: PartContext) -> list[str]:
    """The task-level tests (one primary test per predictor x outcome, sensitivity rows) and one scatter per
    task-level predictor; the Summary's lines are their verdicts (or why none could run)."""
    from lm_forget.analysis.findings_build import tasks_needed

    res, r, opts = ctx.res, ctx.rendered, ctx.options
    tests, metrics = res.tests, res.metrics
    if len(tests):
        r.tables["tests_task_level"] = tests
    report = r.report
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
        for pv in (v for v in res.values if v.level == "task"):
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
    if len(tests) and not any(ran):
        return [f"Task-level predictors: not testable here: needs >= {tasks_needed(len(primary), opts)} tasks "
                f"(this report has {int(primary['n'].max())})."]
    return summary_lines(tests, opts)


@register_part("example_predictors", order=30)
def example_predictors(ctx: PartContext) -> list[str]:
    """The example-level tests within task (docs the fine-tuned model gets right: forgotten or kept); no Summary
    line (the control part says whether they have a baseline)."""
    example_tests = ctx.res.example_tests
    if not len(example_tests):
        return []
    ctx.rendered.tables["tests_example_level"] = example_tests
    report = ctx.report
    report.heading("Predictors of forgetting (example level, within task)")
    report.para("Docs the fine-tuned model answers correctly; forgotten = wrong after forgetting. "
                "AUC > 0.5: forgotten docs have higher values of the predictor. "
                + ("Compared against the control cell below." if ctx.res.control else NO_BASELINE))
    report.table(example_tests[["predictor", "task", "method", "role", "n_forgotten", "n_kept", "statistic",
                                "ci_low", "ci_high", "p", "p_holm", "p_bh", "note"]])
    return []
