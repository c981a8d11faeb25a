"""Build :class:`~lm_forget.analysis.findings.Findings` from results objects (never from the files they wrote).

``report_findings``: one analysis (:class:`AnalysisResults`); ``study_findings``: the study index (the headline
report's findings, the forget-set table's rows, the order statistics and the relearning rows). Every verdict
is one of the tests of :mod:`lm_forget.analysis.decide` or :mod:`lm_forget.analysis.verdicts`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from lm_forget.analysis.decide import NEAR_CHANCE, above_p, near_chance_n
from lm_forget.analysis.findings import Finding, Findings
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.report import ci_of, ci_text, num, why_undefined
from lm_forget.analysis.stats import min_attainable_p
from lm_forget.analysis.verdicts import settings_of, verdict

#: claim -> prefix of its task-level predictors (registry names), the headline one first
PREDICTOR_CLAIMS = {"difficulty": ("accuracy_finetuned", "accuracy_"),
                    "confidence": ("confidence_finetuned", "confidence_"),
                    "variance": ("variance_finetuned", "variance_")}


def _opts_dict(opts: AnalysisOptions) -> dict[str, Any]:
    return {"margin": opts.margin, "alpha": opts.alpha, "confidence_level": opts.confidence_level,
            "correction": opts.correction}


def tasks_needed(hypotheses: int, opts: AnalysisOptions) -> int:
    """Smallest number of tasks at which the smallest corrected permutation p (hypotheses x min attainable p)
    can fall below alpha, and the tests run at all (``min_n_test``)."""
    settings = settings_of(opts)
    n = max(opts.min_n_test, 2)
    while max(1, hypotheses) * min_attainable_p(n, settings) >= opts.alpha and n < 10_000:
        n += 1
    return n


def _counts(words: Sequence[str]) -> str:
    return ", ".join(f"{w}: {c}" for w, c in Counter(words).most_common())


def forget_set_from_rows(rows: Sequence[dict[str, Any]], opts: AnalysisOptions) -> Finding:
    """The forget-set contrast from the forget-set table's rows (``protocol_report.protocol_rows``)."""
    rows = [r for r in rows if num(r.get("forget_set_forget_n")) > 0]
    if not rows:
        return Finding("forget_set", "not in this study", "not in this study: no forget set was scored "
                       "(stages eval_forget and analyze score it).")
    details = [f"{r['task']} (N = {int(r['n'])} docs, seed {r['seed']}): forget set "
               f"{ci_of(r, 'forget_set_forget_acc')} "
               f"-> {r['forget_set_verdict']}; held-out "
               f"{ci_of(r, 'held_out_forget_acc')}"
               for r in rows]
    k = sum(int(num(r["forget_set_forget_acc"]) * num(r["forget_set_forget_n"]) + 0.5) for r in rows)
    n = sum(int(num(r["forget_set_forget_n"])) for r in rows)
    from lm_forget.analysis.metrics import accuracy_ci

    pooled = dict(zip(("acc", "low", "high"), accuracy_ci(k, n, opts.confidence_level), strict=True))
    needed = near_chance_n(0.5, opts.margin, opts.alpha)
    words = [r["forget_set_verdict"] for r in rows]
    near = words.count(NEAR_CHANCE)
    largest = max(int(num(r["forget_set_forget_n"])) for r in rows)
    if all(w.startswith("needs") for w in words):
        return Finding("forget_set", "not testable here",
                       f"not testable here: near chance needs >= {needed} docs per forget set at margin "
                       f"{opts.margin:g} (the largest here has {largest}); forget sets pooled "
                       f"{ci_text(pooled['acc'], pooled['low'], pooled['high'])} over {n} docs.",
                       pooled["acc"], pooled["low"], pooled["high"], largest, needed, testable=False, details=details,
                       source="protocol/forget_set.csv")
    return Finding("forget_set", f"near chance in {near} of {len(rows)} forget sets",
                   f"near chance in {near} of {len(rows)} forget sets ({_counts(words)}); forget sets pooled "
                   f"{ci_text(pooled['acc'], pooled['low'], pooled['high'])} over {n} docs.",
                   pooled["acc"], pooled["low"], pooled["high"], n, needed, details=details,
                   source="protocol/forget_set.csv")


def forget_set_from_metrics(metrics_all, opts: AnalysisOptions) -> Finding:
    """The forget-set verdicts of a report whose docs include the forget pool (split ``train``)."""
    train = metrics_all[metrics_all["split"] == "train"] if len(metrics_all) else metrics_all
    if not len(train):
        return Finding("forget_set", "not in this report",
                       "not in this report: it scores the held-out split only; the study index tables the forget "
                       "set (protocol/forget_set.csv).")
    words = list(train["at_chance"])
    details = [f"{r['task']} (N = {int(r['n'])} docs): {ci_of(r, 'acc_forget')} -> {r['at_chance']}"
               for _, r in train.iterrows()]
    near = words.count(NEAR_CHANCE)
    return Finding("forget_set", f"near chance in {near} of {len(words)} tasks",
                   f"forget-pool docs near chance in {near} of {len(words)} tasks ({_counts(words)}).",
                   n=int(train["n"].min()), n_needed=near_chance_n(0.5, opts.margin, opts.alpha), details=details,
                   source="metrics.csv")


def held_out_finding(joined, metrics, opts: AnalysisOptions) -> Finding:
    """Does the held-out forget drop differ across tasks? Kruskal-Wallis on per-doc drops (scipy.stats.kruskal)."""
    from scipy.stats import kruskal

    scope = joined[joined["split"] == opts.split]
    groups = {t: (g["correct_finetuned"].to_numpy(float) - g["correct_forget"].to_numpy(float))
              for t, g in scope.groupby("task", sort=True) if len(g) >= 2}
    details = [f"{r['task']} (N = {int(r['n'])} docs): drop {ci_of(r, 'forget_drop')}, {opts.outcome} "
               f"{ci_of(r, opts.outcome)}" for _, r in metrics.iterrows()]
    if len(groups) < 2:
        return Finding("held_out", "not testable here", f"not testable here: needs >= 2 tasks (this report has "
                       f"{len(groups)}).", n=len(groups), n_needed=2, unit="tasks", testable=False, details=details)
    lo_task = metrics.loc[metrics["forget_drop"].idxmin()]
    hi_task = metrics.loc[metrics["forget_drop"].idxmax()]
    span = (f"held-out forget drop from {ci_of(lo_task, 'forget_drop')} ({lo_task['task']}) to "
            f"{ci_of(hi_task, 'forget_drop')} ({hi_task['task']})")
    try:
        p = float(kruskal(*groups.values()).pvalue)
    except ValueError:  # every drop identical in every task
        p = 1.0
    word = "varies by task" if p < opts.alpha else "no difference across tasks shown"
    return Finding("held_out", word, f"{span}; Kruskal-Wallis across {len(groups)} tasks p = {p:.3g} -> {word}.",
                   float(hi_task["forget_drop"] - lo_task["forget_drop"]), n=len(groups), n_needed=2, unit="tasks",
                   details=details, source="metrics.csv")


def behaviours_finding(metrics, opts: AnalysisOptions) -> Finding:
    words = [str(w) for w in metrics["behaviour"]]
    details = [f"{r['task']}: {r['behaviour']} (drop {ci_of(r, 'forget_drop')}, forget - pretrained "
               f"{ci_of(r, 'forget_vs_pretrained')})" for _, r in metrics.iterrows()]
    decided = [w for w in words if w in ("kept", "partial", "to_pretrained")]
    needs = [w for w in words if w.startswith("needs")]
    if not decided and needs and len(needs) == len(words):
        return Finding("behaviours", "not testable here", f"not testable here: {needs[0]} per task at margin "
                       f"{opts.margin:g} (tasks: {len(words)}).", n=int(metrics["n"].min()), testable=False,
                       details=details, source="metrics.csv")
    cats = sorted(set(decided))
    return Finding("behaviours", f"{len(cats)} categor{'y' if len(cats) == 1 else 'ies'} decided",
                   f"{len(decided)} of {len(words)} tasks decided ({_counts(words)}); categories decided: "
                   f"{', '.join(cats) or 'none'}.", len(cats), n=len(words), unit="tasks", details=details,
                   source="metrics.csv")


def predictor_findings(tests, opts: AnalysisOptions) -> list[Finding]:
    """Difficulty, confidence and variance from the primary task-level tests (their summary's verdicts)."""
    from lm_forget.analysis.report import fmt

    primary = tests[tests["role"] == "primary"] if len(tests) else tests
    needed = tasks_needed(len(primary), opts)
    out = []
    for claim, (head, prefix) in PREDICTOR_CLAIMS.items():
        rows = primary[primary["predictor"].str.startswith(prefix)] if len(primary) else primary
        if not len(rows):
            out.append(Finding(claim, "not in this report", f"not in this report: no {prefix}* predictor values "
                               "(variance needs the features stage)." if claim == "variance" else
                               f"not in this report: no {prefix}* predictor values.", unit="tasks"))
            continue
        rows = rows.sort_values("predictor", key=lambda s: s != head)
        words = {r["predictor"]: verdict(r, opts) for _, r in rows.iterrows()}
        n = int(rows["n"].max())
        pcol = "p_holm" if opts.correction == "holm" else "p_bh"
        details = [f"{r['predictor']} (n = {int(r['n'])} tasks): Spearman rho "
                   f"{ci_text(r['statistic'], r['ci_low'], r['ci_high'], 2)}{why_undefined(r)}, "
                   f"{opts.correction} p = {fmt(r[pcol], 3)} -> {words[r['predictor']]}" for _, r in rows.iterrows()]
        if all(w in ("not tested", "not testable") for w in words.values()):
            out.append(Finding(claim, "not testable here", f"not testable here: needs >= {needed} tasks (this "
                               f"report has {n}).", n=n, n_needed=needed, unit="tasks", testable=False,
                               source="tests_task_level.csv"))
            continue
        r = rows.iloc[0]
        out.append(Finding(claim, words[r["predictor"]], details[0] + f". Paper (abstract): {r['expected']}.",
                           num(r["statistic"]), num(r["ci_low"]), num(r["ci_high"]), n, needed, unit="tasks",
                           details=details[1:], source="tests_task_level.csv"))
    return out


def probes_finding(feature_sets: Sequence[dict], metrics, opts: AnalysisOptions) -> Finding:
    """After forgetting, is the task still linearly decodable? One-sided exact binomial test of the probe's doc
    accuracy > chance + margin, at the feature set's primary layer."""
    rows = []
    for fs in feature_sets:
        if not str(fs.get("role", "")).startswith("forget"):
            continue
        probes = fs.get("probes", [])
        for task in sorted({p["task"] for p in probes}):
            mine = [p for p in probes if p["task"] == task]
            pick = next((p for p in mine if int(p["layer"]) == int(fs.get("primary_layer", -1))),
                        max(mine, key=lambda p: int(p["layer"])))
            rows.append(pick)
    if not rows:
        return Finding("probes", "not in this run", "not in this run: no probes after forgetting "
                       "(set analysis.probes: true).")
    details, passed = [], 0
    for p in rows:
        n = int(p["n_test_pairs"]) // 2
        k = round(float(p["probe_doc_acc"]) * n)
        pv = above_p(k, n, 0.5 + opts.margin) if n else math.nan
        ok = pv < opts.alpha
        passed += ok
        model = metrics.loc[metrics["task"] == p["task"], "acc_forget"]
        details.append(f"{p['task']} (layer {p['layer']}, N = {n} docs): probe "
                       f"{ci_of(p, 'probe_doc_acc')} "
                       f"vs model {float(model.iloc[0]) if len(model) else math.nan:.3f} -> "
                       f"{'recovers the task' if ok else 'recovery not shown'} (p = {pv:.3g})")
    word = f"recovered in {passed} of {len(rows)} tasks"
    return Finding("probes", word, f"a linear probe shows the forgotten task above {0.5 + opts.margin:g} in {passed} "
                   f"of {len(rows)} tasks (exact binomial, one-sided).", float(passed), n=len(rows), unit="tasks",
                   details=details, source="probes.csv")


def report_findings(res: Any) -> Findings:
    """The findings of one analysis (:class:`lm_forget.analysis.results.AnalysisResults`)."""
    opts = res.options
    out = Findings("report", _opts_dict(opts))
    out.put(forget_set_from_metrics(res.metrics_all, opts))
    out.put(held_out_finding(res.joined, res.metrics, opts))
    out.put(behaviours_finding(res.metrics, opts))
    for finding in predictor_findings(res.tests, opts):
        out.put(finding)
    out.put(probes_finding(res.feature_sets, res.metrics, opts))
    return out


def order_finding(stats: Sequence[tuple[str, Any]]) -> Finding:
    """Learning vs forgetting order from the dynamics sections' ``order_stats`` frames ((label, frame) pairs)."""
    details, defined = [], 0
    for label, frame in stats:
        for r in frame.to_dict("records"):
            rho = num(r.get("spearman"))
            defined += math.isfinite(rho) and r["task"] != "pooled"
            note = "" if isinstance(r.get("note"), float) else str(r.get("note") or "")
            if math.isfinite(rho):
                value = f"rho {ci_text(rho, r.get('ci_low'), r.get('ci_high'), 2)}" + (f"; {note}" if note else "")
            else:  # the section's reason when it gives one; else its rule
                value = note if note.startswith("undefined") else (
                    "undefined: too few docs, or one order is constant" + (f" ({note})" if note else ""))
            details.append(f"{label} {r['task']} ({int(num(r.get('n_qualifying')) or 0)} of "
                           f"{int(num(r.get('n_docs')) or 0)} docs learned and forgotten): {value}")
    if not details:
        return Finding("order", "not in this study", "not in this study: no training dynamics (dynamics_every).")
    return Finding("order", f"defined for {defined} task(s)", f"Spearman rank correlation of learned-at vs "
                   f"forgotten-at, defined for {defined} task(s) (bootstrap intervals below).", float(defined),
                   unit="tasks", details=details, source="protocol/dynamics-*/order_stats.csv")


def _share(row: dict[str, Any]) -> str:
    """The recovered share with its interval, or the reason it is undefined."""
    if math.isfinite(num(row.get("recovered_share"))):
        return ci_text(row["recovered_share"], row["recovered_share_lo"], row["recovered_share_hi"])
    note = str(row.get("note") or "")
    if not note:
        return "undefined"
    return note if note.startswith("undefined") else f"undefined: {note}"


def relearn_finding(rows: Sequence[dict[str, Any]]) -> Finding:
    """Relearning verdicts from the relearning table's rows (``relearn_report.cell_row``)."""
    rows = [r for r in rows if "relearn_verdict" in r]
    if not rows:
        return Finding("relearn", "not in this study", "not in this study: no relearning stage.")
    details = [f"{r['task']} k={r['k']} (N = {r['docs']} docs): after forget "
               f"{ci_text(r['acc_forget'], r['acc_forget_lo'], r['acc_forget_hi'])} -> after relearn "
               f"{ci_text(r['acc_relearn'], r['acc_relearn_lo'], r['acc_relearn_hi'])} -> {r['relearn_verdict']}; "
               f"recovered share {_share(r)}{_net(r)}" for r in rows]
    words = [r["relearn_verdict"] for r in rows]
    back = words.count("relearned")
    net = [r["net_verdict"] for r in rows if isinstance(r.get("net_verdict"), str)]
    net_text = (f"; net of the pretrained control, relearned in {net.count('relearned')} of {len(net)} "
                f"({_counts(net)})") if net else ""
    return Finding("relearn", f"relearned in {back} of {len(rows)} cells",
                   f"relearned in {back} of {len(rows)} cells ({_counts(words)}){net_text}.", float(back),
                   n=len(rows), unit="cells", details=details, source="relearn/relearn.csv")


def _net(row: dict[str, Any]) -> str:
    """The control's part of a relearning line: its gain and the net gain, each with its interval."""
    if not isinstance(row.get("net_verdict"), str):
        note = row.get("control_note")
        return f"; {note}" if isinstance(note, str) and note else ""
    where = f" on {row['unrelated_task']}" if isinstance(row.get("unrelated_task"), str) else ""
    return (f"; control (pretrained relearned{where}) gain "
            f"{ci_text(row['control_gain'], row['control_gain_lo'], row['control_gain_hi'])} -> "
            f"{row['control_verdict']}; net gain {ci_text(row['net_gain'], row['net_gain_lo'], row['net_gain_hi'])} "
            f"-> {row['net_verdict']}")


def study_findings(headline: Findings | None, opts: AnalysisOptions, *, protocol: Sequence[dict] = (),
                   orders: Sequence[tuple[str, Any]] = (), relearn: Sequence[dict] = (),
                   deep: tuple[Sequence[dict], Sequence[dict]] = ((), ())) -> Findings:
    """The study index's findings: the headline report's, with the forget-set contrast from the forget-set
    table, and the order, relearning and how-deep (``deep_report.deep_rows``) findings."""
    from lm_forget.analysis.deep_findings import deep_finding

    out = Findings("study", _opts_dict(opts), list(headline.items) if headline else [])
    out.put(forget_set_from_rows(protocol, opts))
    out.put(order_finding(orders))
    out.put(relearn_finding(relearn))
    out.put(deep_finding(*deep))
    return out
