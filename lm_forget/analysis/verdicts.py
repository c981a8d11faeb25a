"""Task-level tests and the words of the summary: one pre-declared primary test per hypothesis.

A hypothesis is (predictor, outcome). Its primary test is Spearman's rho with a permutation p-value (exact
for small n); Pearson and Kendall are sensitivity rows and never enter the verdict. Holm / BH correct over
the hypotheses (the primary rows), not over methods of one hypothesis. A non-significant result is only
called "no association" when the CI excludes |rho| >= ``equivalence_rho``; otherwise it is inconclusive,
with the power to detect rho = ``power_rho`` at this n.
"""

from __future__ import annotations

import math

from lm_forget.analysis import stats
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.report import fmt

PRIMARY = "spearman"


def settings_of(opts: AnalysisOptions) -> stats.TestSettings:
    """The test settings named in ``opts`` (same field names; nothing copied by hand that could drift)."""
    from dataclasses import fields

    return stats.TestSettings(**{f.name: getattr(opts, f.name) for f in fields(stats.TestSettings)})


def _is_null_claim(expected: str) -> bool:
    return "does not predict" in expected


def task_level_tests(values, outcome: dict[str, float], opts: AnalysisOptions, *, outcome_name: str = ""):
    """Outcome vs every task-level predictor across tasks: primary + sensitivity rows, correction over the
    primary rows, plus min attainable p, power and the equivalence statement of each hypothesis."""
    import pandas as pd

    settings = settings_of(opts)
    rows = []
    for pv in values:
        if pv.level != "task":
            continue
        tasks = [t for t in outcome if t in pv.values]
        x = [pv.values[t] for t in tasks]
        y = [outcome[t] for t in tasks]
        for r in stats.correlate(x, y, settings):
            role = "primary" if r["method"] == PRIMARY else "sensitivity"
            rows.append({"predictor": pv.name, "outcome": outcome_name or opts.outcome, "role": role,
                         "expected": pv.expected} | r)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    primary = table["role"] == "primary"
    table["p_holm"] = math.nan
    table["p_bh"] = math.nan
    table.loc[primary, "p_holm"] = stats.holm(table.loc[primary, "p"].to_numpy())
    table.loc[primary, "p_bh"] = stats.benjamini_hochberg(table.loc[primary, "p"].to_numpy())
    table["min_p"] = [stats.min_attainable_p(int(n), settings) for n in table["n"]]
    table["power"] = math.nan
    for n in sorted(set(table.loc[primary, "n"])):
        if n >= opts.min_n_test:
            table.loc[primary & (table["n"] == n), "power"] = stats.spearman_power(
                int(n), opts.power_rho, opts.alpha, settings)
    table["equivalence"] = [equivalence(r, opts) if r["role"] == "primary" else ""
                            for _, r in table.iterrows()]
    return table


def equivalence(row, opts: AnalysisOptions) -> str:
    """The equivalence statement of a primary row's CI against ``equivalence_rho``."""
    eq = opts.equivalence_rho
    lo, hi = row["ci_low"], row["ci_high"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no CI"
    if -eq < lo and hi < eq:
        return f"|rho| >= {eq} excluded"
    if lo >= eq or hi <= -eq:
        return f"|rho| < {eq} excluded"
    return f"|rho| < {eq} cannot be excluded; |rho| >= {eq} cannot be excluded"


def verdict(row, opts: AnalysisOptions) -> str:
    """The verdict word of one primary row: significant / no association / inconclusive / not testable."""
    pcol = "p_holm" if opts.correction == "holm" else "p_bh"
    if not math.isfinite(row["statistic"]):
        return "not tested"
    if row["min_p"] > opts.alpha:
        return "not testable"
    if math.isfinite(row[pcol]) and row[pcol] < opts.alpha:
        return "significant"
    if row["equivalence"].startswith("|rho| >="):
        return "no association"
    return "inconclusive"


def summary_lines(tests, opts: AnalysisOptions) -> list[str]:
    """One sentence per hypothesis, its words chosen from the primary test, the CI, the equivalence bound
    and the power (never "agrees with the paper" from a non-significant p alone)."""
    if tests is None or tests.empty:
        return ["No task-level test could run (see the notes in the tests table)."]
    pcol = "p_holm" if opts.correction == "holm" else "p_bh"
    lines = []
    for _, r in tests[tests["role"] == "primary"].sort_values("predictor").iterrows():
        word = verdict(r, opts)
        name, n = r["predictor"], int(r["n"])
        if word == "not tested":
            lines.append(f"{name}: not tested ({r['note'] or 'no finite values'}).")
            continue
        ci = (f"[{fmt(r['ci_low'], 2)}, {fmt(r['ci_high'], 2)}]" if math.isfinite(r["ci_low"])
              and math.isfinite(r["ci_high"]) else "(no bootstrap CI: the resamples are degenerate at this n)")
        head = (f"{name} vs {r['outcome']} (n={n} tasks): Spearman rho = {fmt(r['statistic'], 2)} {ci}, "
                f"permutation p = {fmt(r['p'], 3)}, "
                f"{opts.correction}-adjusted p = {fmt(r[pcol], 3)}")
        power = f"power to detect rho = {opts.power_rho} at n={n}: {r['power']:.0%}"
        null_claim = _is_null_claim(r["expected"])
        if word == "not testable":
            tail = (f"not testable at n={n}: the smallest attainable permutation p is {fmt(r['min_p'], 3)} "
                    f"> alpha = {opts.alpha}, so no result could be significant")
        elif word == "significant":
            tail = f"significant at alpha = {opts.alpha}"
            if null_claim:
                tail += " (against the paper's null claim)"
        elif word == "no association":
            tail = (f"not significant, and the CI excludes |rho| >= {opts.equivalence_rho}: no association "
                    f"of that size" + (" (consistent with the paper's null claim)" if null_claim else ""))
        else:
            tail = (f"inconclusive: not significant at alpha = {opts.alpha}, but |rho| >= {opts.equivalence_rho} "
                    f"cannot be excluded (absence of evidence, not evidence of absence); {power}")
        note = f" {r['note']}." if r["note"] else ""
        lines.append(f"{head} -> {tail}. Paper (abstract): {r['expected']}.{note}")
    return lines
