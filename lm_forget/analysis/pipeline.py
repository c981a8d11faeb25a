"""``analyze``: phases -> joined docs -> metrics -> predictors -> tests -> matrix -> probes -> figures -> report."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from lm_forget.analysis import plots, stats
from lm_forget.analysis.join import PHASES, join_phases
from lm_forget.analysis.metrics import BEHAVIOURS, task_metrics
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.registry import Context, compute
from lm_forget.analysis.report import Report, fmt, markdown_table
from lm_forget.errors import DataError

log = logging.getLogger(__name__)

OUTCOME_LABELS = {"forget_ratio": "forget ratio (random labels)",
                  "forget_ratio_flipped": "forget ratio (flipped labels)",
                  "forget_gap": "forget gap (acc_forget - chance)"}

# Choices beyond the paper's definitions, printed in every report (and in docs/analysis.md).
CHOICES = [
    "Accuracy = lm-eval's per-doc `acc` (argmax of summed loglikelihoods); CIs are Wilson binomial intervals.",
    "Chance = mean of 1/n_choices over docs (0.5 for the binarized suite).",
    "Forget ratios with |denominator| < min_denominator are undefined (NaN) and left out of the tests.",
    "Confidence = softmax over the two summed loglikelihoods, P(gold); task value = mean over docs.",
    "Task-level predictors and the outcome are all measured on one split (options.split).",
    "Example level: among docs the fine-tuned model gets right, 'forgotten' = wrong after forgetting; "
    "tested with point-biserial r (bootstrap CI) and AUC (Mann-Whitney U).",
    "Multiple testing: one family per level (every predictor x method); Holm and BH both tabled.",
    "Bootstrap: scipy.stats.bootstrap, paired, BCa (percentile if BCa is degenerate). Permutation: "
    "scipy.stats.permutation_test, pairings, two-sided.",
    "Cross-task matrix: UPGMA = scipy average linkage on Euclidean distances; variance shares from an "
    "additive two-way sum-of-squares decomposition over complete rows/columns.",
]


def _write_table(frame, out: Path, stem: str) -> None:
    frame.to_csv(out / f"{stem}.csv", index=False)
    frame.to_json(out / f"{stem}.json", orient="records", indent=2)
    (out / f"{stem}.md").write_text(markdown_table(frame) + "\n", encoding="utf-8")


def _settings(opts: AnalysisOptions) -> stats.TestSettings:
    """The test settings named in ``opts`` (same field names; nothing copied by hand that could drift)."""
    from dataclasses import fields

    return stats.TestSettings(**{f.name: getattr(opts, f.name) for f in fields(stats.TestSettings)})


def task_level_tests(values, metrics, opts: AnalysisOptions):
    """Outcome vs every task-level predictor, across tasks; one family, Holm + BH."""
    import pandas as pd

    outcome = dict(zip(metrics["task"], metrics[opts.outcome], strict=True))
    rows = []
    for pv in values:
        if pv.level != "task":
            continue
        tasks = [t for t in outcome if t in pv.values]
        x = [pv.values[t] for t in tasks]
        y = [outcome[t] for t in tasks]
        for r in stats.correlate(x, y, _settings(opts)):
            rows.append({"predictor": pv.name, "outcome": opts.outcome, "expected": pv.expected} | r)
    table = pd.DataFrame(rows)
    return stats.correct_family(table) if len(table) else table


def example_level_tests(values, joined, opts: AnalysisOptions):
    """Within each task: forgotten (of the docs the fine-tuned model got right) vs per-doc predictors."""
    import pandas as pd

    scope = joined[(joined["split"] == opts.split) & joined["correct_finetuned"]]
    rows = []
    for pv in values:
        if pv.level != "example":
            continue
        for task, g in scope.groupby("task", sort=True):
            for r in stats.binary_association(g["forgotten"], pv.values.loc[g.index], _settings(opts),
                                              min_per_group=opts.example_min_forgotten):
                rows.append({"predictor": pv.name, "task": task} | r)
    table = pd.DataFrame(rows)
    return stats.correct_family(table) if len(table) else table


def _model_accuracy(metrics, role: str, task: str) -> float:
    """The model's own accuracy beside a probe: phase roles, and ``forget-<task>`` on its own task."""
    phase = "forget" if role == f"forget-{task}" else role
    row = metrics[metrics["task"] == task]
    col = f"acc_{phase}"
    return float(row[col].iloc[0]) if col in row and len(row) else math.nan


def _summary(tests, opts: AnalysisOptions) -> list[str]:
    lines = []
    if tests is None or tests.empty:
        return ["No task-level test could run (see the notes in the tests table)."]
    pcol = "p_holm" if opts.correction == "holm" else "p_bh"
    for name, g in tests.groupby("predictor", sort=True):
        by = {r["method"]: r for _, r in g.iterrows()}
        p, s = by.get("pearson"), by.get("spearman")
        if p is None or not math.isfinite(p["statistic"]):
            note = p["note"] if p is not None else "no Pearson row"
            lines.append(f"{name}: not tested ({note}).")
            continue
        held = any(math.isfinite(r[pcol]) and r[pcol] < opts.alpha for r in (p, s) if r is not None)
        verdict = "significant" if held else "not significant"
        lines.append(
            f"{name} vs {opts.outcome} (n={p['n']} tasks): Pearson r = {fmt(p['statistic'], 2)} "
            f"[{fmt(p['ci_low'], 2)}, {fmt(p['ci_high'], 2)}], Spearman rho = {fmt(s['statistic'], 2)} "
            f"[{fmt(s['ci_low'], 2)}, {fmt(s['ci_high'], 2)}]; {opts.correction}-adjusted p = "
            f"{fmt(p[pcol], 3)} / {fmt(s[pcol], 3)} -> {verdict} at alpha = {opts.alpha}. "
            f"Paper: {p['expected']}.{(' ' + p['note']) if p['note'] else ''}")
    return lines


def run_analysis(*, pretrained: Path, finetuned: Path, forget: Path, out: Path, features: Path | None = None,
                 matrix: Path | None = None, options: AnalysisOptions | None = None) -> Path:
    """Run the whole analysis and write the report folder; returns ``out``."""
    from lm_forget.analysis.features import read_feature_sets
    from lm_forget.analysis.samples import read_phase

    opts = options or AnalysisOptions()
    out = Path(out)
    folders = {"pretrained": pretrained, "finetuned": finetuned, "forget": forget}
    for name, folder in folders.items():
        if folder is None:
            raise DataError(f"missing phase {name}: pass --{name} DIR (an lm_eval --log_samples output folder)")
    phases = {name: read_phase(folder) for name, folder in folders.items()}
    joined = join_phases(phases)
    metrics_all = task_metrics(joined, opts)
    metrics = metrics_all[metrics_all["split"] == opts.split].reset_index(drop=True)
    if metrics.empty:
        raise DataError(f"no docs of split {opts.split!r} in the samples (splits present: "
                        f"{', '.join(sorted(metrics_all['split'].unique()))}); pass --split accordingly")
    feature_sets = read_feature_sets(features) if features else []
    ctx = Context(joined=joined, metrics=metrics, options=opts, feature_sets=feature_sets)
    values = compute(ctx, list(opts.predictors) or None)
    for pv in values:  # tasks the predictor lacks become NaN (dropped pairwise by the tests)
        if pv.level == "task":
            missing = sorted(set(metrics["task"]) - set(pv.values))
            if missing:
                log.warning("%s has no value for %s", pv.name, ", ".join(missing))
    tests = task_level_tests(values, metrics, opts)
    example_tests = example_level_tests(values, joined, opts)

    out.mkdir(parents=True, exist_ok=True)
    figdir = out / "figures"
    _write_table(metrics_all, out, "metrics")
    if len(tests):
        _write_table(tests, out, "tests_task_level")
    if len(example_tests):
        _write_table(example_tests, out, "tests_example_level")
    joined.drop(columns=[c for c in joined.columns if c.startswith("loglik_")]).to_csv(out / "docs.csv", index=False)
    (out / "options.json").write_text(json.dumps(opts.to_dict(), indent=2), encoding="utf-8")

    report = Report("Forgetting analysis")
    report.para("Inputs: " + "; ".join(f"{n} = {phases[n].root} ({phases[n].model})" for n in PHASES)
                + (f"; features = {features}" if features else "") + (f"; matrix = {matrix}" if matrix else ""))
    summary_at = len(report.blocks)
    report.heading("Accuracies and forgetting metrics")
    report.para(f"Behaviours (thresholds): kept = {BEHAVIOURS['kept']} with same_margin = {opts.same_margin}; "
                f"to_pretrained = {BEHAVIOURS['to_pretrained']} with pretrained_margin = "
                f"{opts.pretrained_margin}; partial = otherwise. at_chance: |acc_forget - chance| <= "
                f"{opts.chance_margin}. Ratios need |denominator| >= {opts.min_denominator}.")
    show = ["task", "split", "n", "acc_pretrained", "acc_finetuned", "acc_forget", "forget_gap", "forget_ratio",
            "forget_ratio_flipped", "behaviour", "at_chance"]
    report.table(metrics_all[show])
    report.figure(plots.accuracy_bars(metrics, figdir / "accuracy_bars", opts.formats)[0],
                  f"Accuracy per task on the {opts.split} docs: pretrained / fine-tuned / after forgetting "
                  "(95% Wilson CI; dashed: chance)")
    report.figure(plots.confidence_histograms(joined[joined["split"] == opts.split], figdir / "confidence_hist",
                                              opts.formats)[0],
                  "P(correct vs distractor) per doc, by phase (dashed: 0.5)")

    report.heading("Predictors of forgetting (task level)")
    report.para(f"Outcome: {OUTCOME_LABELS[opts.outcome]} on the {opts.split} docs, one point per task. "
                f"p = scipy's analytic p-value, p_perm = permutation test, CI = bootstrap "
                f"{int(opts.confidence_level * 100)}% interval; p_holm / p_bh corrected over all rows.")
    if len(tests):
        report.table(tests[["predictor", "method", "n", "statistic", "ci_low", "ci_high", "p", "p_perm",
                            "p_holm", "p_bh", "note"]])
        outcome = dict(zip(metrics["task"], metrics[opts.outcome], strict=True))
        for pv in (v for v in values if v.level == "task"):
            g = tests[tests["predictor"] == pv.name].set_index("method")
            ann = "; ".join(f"{sym} = {fmt(g.loc[m, 'statistic'], 2)} (p = {fmt(g.loc[m, 'p'], 2)})"
                            for m, sym in (("pearson", "r"), ("spearman", "ρ")) if m in g.index)
            ann = ann.replace("— (p = —)", "not tested") or "not tested"
            tasks = list(outcome)
            paths = plots.predictor_scatter([pv.values.get(t, math.nan) for t in tasks],
                                            [outcome[t] for t in tasks], tasks, xlabel=pv.name,
                                            ylabel=OUTCOME_LABELS[opts.outcome], annotation=ann,
                                            stem=figdir / f"scatter_{pv.name}", formats=opts.formats)
            report.figure(paths[0], f"{OUTCOME_LABELS[opts.outcome]} vs {pv.name}: {pv.description}")
    if len(example_tests):
        report.heading("Predictors of forgetting (example level, within task)")
        report.para("Docs the fine-tuned model answers correctly; forgotten = wrong after forgetting. "
                    "AUC > 0.5: forgotten docs have higher values of the predictor.")
        report.table(example_tests[["predictor", "task", "method", "n_forgotten", "n_kept", "statistic",
                                    "ci_low", "ci_high", "p", "p_holm", "p_bh", "note"]])

    if feature_sets:
        import pandas as pd

        feats = pd.DataFrame([{"role": fs["role"], "task": task, "split": fs["split"], "layer": int(layer),
                               "primary": int(layer) == int(fs["primary_layer"]), "n_docs": v["n_docs"],
                               "variance": value}
                              for fs in feature_sets for task, v in fs["tasks"].items()
                              for layer, value in v["variance"].items()])
        _write_table(feats, out, "features")
        report.heading("Hidden-state variance features")
        report.para("Trace of the covariance across docs of the hidden state at the prompt's last token "
                    "(hidden_states index; 0 = embeddings). The primary layer feeds the variance predictor.")
        report.table(feats[feats["primary"]].drop(columns="primary"))

    matrix_lines = []
    if matrix:
        from lm_forget.analysis import matrix as mx

        ft_acc = dict(zip(metrics["task"], metrics["acc_finetuned"], strict=True))
        ratios, long = mx.ratio_matrix(mx.read_matrix_dir(matrix, split=opts.split), ft_acc,
                                       min_denominator=opts.min_denominator)
        row_order, col_order, row_link, col_link = mx.upgma_order(ratios)
        shares = mx.variance_shares(ratios)
        long.to_csv(out / "matrix_long.csv", index=False)
        ratios.loc[row_order, col_order].to_csv(out / "matrix_forget_ratio.csv")
        (out / "matrix_summary.json").write_text(json.dumps(shares, indent=2), encoding="utf-8")
        report.heading("Cross-task forgetting matrix")
        png = plots.matrix_heatmap(ratios, row_order, col_order, figdir / "matrix_heatmap", opts.formats,
                                  row_link=row_link, col_link=col_link)[0]
        report.figure(png, "Forget ratio of the evaluated task (columns) after forgetting the row task; "
                           "rows and columns ordered by UPGMA")
        if math.isfinite(shares.get("row_share", math.nan)):
            side = "evaluated task" if shares["col_share"] > shares["row_share"] else "forgotten (trained) task"
            matrix_lines.append(
                f"Cross-task matrix ({shares['n_rows']}x{shares['n_cols']} complete): the evaluated task explains "
                f"{shares['col_share']:.0%} of the forget-ratio variance, the forgotten task {shares['row_share']:.0%} "
                f"(residual {shares['residual_share']:.0%}) -> the {side} matters more.")
        else:
            matrix_lines.append("Cross-task matrix too small or incomplete for a variance decomposition.")
        report.bullets(matrix_lines)

    probes = [dict(p, role=fs["role"]) for fs in feature_sets for p in fs.get("probes", [])]
    if probes:
        import pandas as pd

        probe_table = pd.DataFrame(probes)
        probe_table["model_acc"] = [_model_accuracy(metrics, role, task)
                                    for role, task in zip(probe_table["role"], probe_table["task"], strict=True)]
        model_acc = {role: float(g["model_acc"].mean()) for role, g in probe_table.groupby("role")}
        _write_table(probe_table, out, "probes")
        report.heading("Linear probes (is forgetting shallow?)")
        report.para("L2 logistic probes with early stopping on the last-token hidden state of (question, answer) "
                    "pairs, trained on the forget-pool docs and tested on the held-out docs; probe_doc_acc picks "
                    "the answer the probe scores higher (chance 0.5), comparable to model accuracy.")
        report.table(probe_table[[c for c in ("role", "task", "layer", "probe_doc_acc", "probe_pair_acc",
                                              "model_acc", "n_train_pairs", "n_test_pairs") if c in probe_table]])
        png = plots.probe_by_layer(probe_table, model_acc, figdir / "probe_by_layer", opts.formats)[0]
        report.figure(png, "Probe accuracy by layer (mean over tasks); dotted: the model's own accuracy")

    report.heading("Choices beyond the paper's definitions", level=2)
    report.bullets(CHOICES)
    summary = _summary(tests, opts) + matrix_lines
    counts = metrics["behaviour"].value_counts().to_dict()
    summary.insert(0, "Behaviours on the " + opts.split + " docs: "
                   + ", ".join(f"{k}: {counts.get(k, 0)}" for k in BEHAVIOURS) + f" (of {len(metrics)} tasks).")
    report.blocks[summary_at:summary_at] = [("h", (2, "Summary")), ("ul", summary)]
    report.write(out)
    log.info("report written to %s", out / "index.md")
    return out
