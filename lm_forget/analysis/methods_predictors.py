"""What predicts forgetting, compared across forgetting methods.

Each method's predictor analysis (variance, confidence, difficulty) is its own report; this table puts their
*primary* task-level rows side by side: per method, forget-set size, predictor and outcome, the Spearman
correlation with its interval, the multiplicity-corrected p, the power at this n, and the verdict word the
per-method report uses (:func:`lm_forget.analysis.verdicts.verdict`). It reads each method's headline report
(pooled over replicates where there is one), so it compares exactly what the method reports say; no statistic
is recomputed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_forget.analysis.options import AnalysisOptions

TESTS_FILE = "tests_task_level.csv"  # the task-level tests table of a report folder (analysis/render.py)


def _num(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) and math.isfinite(value) else "n/a"


def predictor_rows(reports: Mapping[tuple[str, int], Path], opts: AnalysisOptions) -> list[dict[str, Any]]:
    """One row per (method, size, predictor, outcome): the primary task-level test of that method's report.

    ``reports``: (method id, forget-set size) -> the headline report folder of that method and size."""
    import pandas as pd

    from lm_forget.analysis.verdicts import verdict

    rows: list[dict[str, Any]] = []
    for (method, n), folder in reports.items():
        path = Path(folder) / TESTS_FILE
        if not path.is_file():  # no task-level tests (e.g. too few tasks): say so in the table
            rows.append({"method": method, "n": n, "predictor": "", "outcome": "", "n_tasks": 0,
                         "note": f"no task-level tests in {path.parent.name}"})
            continue
        tests = pd.read_csv(path, keep_default_na=True)
        for _, row in tests[tests["role"] == "primary"].iterrows():
            row = row.copy()
            row["equivalence"] = row["equivalence"] if isinstance(row["equivalence"], str) else ""
            rows.append({"method": method, "n": n, "predictor": row["predictor"], "outcome": row["outcome"],
                         "n_tasks": int(row["n"]), "rho": float(row["statistic"]), "ci_low": float(row["ci_low"]),
                         "ci_high": float(row["ci_high"]), "p_corrected": float(row["p_holm" if opts.correction
                                                                                     == "holm" else "p_bh"]),
                         "power": float(row["power"]), "verdict": verdict(row, opts),
                         "equivalence": row["equivalence"], "note": ""})
    return rows


def write_predictor_section(reports: Mapping[tuple[str, int], Path], out: Path,
                            opts: AnalysisOptions) -> list[str]:
    """Write ``predictors_by_method.{csv,md}`` under ``out``; return the report's markdown lines."""
    import pandas as pd

    rows = predictor_rows(reports, opts)
    if not rows:
        return []
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "predictors_by_method.csv", index=False)
    lines = ["## What predicts forgetting, by method", "",
             "The primary (Spearman) task-level test of each method's own report, side by side: rho with its "
             f"{opts.confidence_level:.0%} interval, the p corrected over hypotheses, the power to detect "
             "rho = 0.5 at this n, and the report's verdict. A method's row can only be compared with another's "
             "where both are tested at a useful n.", "",
             "| method | forget-set size | predictor | outcome | tasks | rho [CI] | p (corrected) | power | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["note"]:
            lines.append(f"| {r['method']} | {r['n']} | {r['note']} | | | | | | |")
            continue
        lines.append(f"| {r['method']} | {r['n']} | {r['predictor']} | {r['outcome']} | {r['n_tasks']} | "
                     f"{_num(r['rho'])} [{_num(r['ci_low'])}, {_num(r['ci_high'])}] | "
                     f"{_num(r['p_corrected'], 3)} | {_num(r['power'])} | {r['verdict']} |")
    lines += ["", f"Table as CSV: `{out.name}/predictors_by_method.csv`.", ""]
    (out / "predictors_by_method.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines
