"""The cross-method predictor table: each method's primary task-level test, from its own analysis in memory."""

from __future__ import annotations

from lm_forget.analysis.api import compute
from lm_forget.analysis.methods_report import predictors_data
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.sections import SECTIONS
from lm_forget.analysis.simulate import correlated_tasks, simulate_phases, write_study

FAST = AnalysisOptions(n_bootstrap=300, n_permutations=300, n_power=100, predictors=("confidence",),
                       formats=("png",))


def _report(root, rho: float):
    folders = write_study(root / "evals", simulate_phases(correlated_tasks(12, rho=rho, seed=3, n_docs=150),
                                                          seed=3))
    return compute(**folders, options=FAST)


def test_planted_predictor_differs_between_methods_and_the_table_says_so(tmp_path):
    strong, null = _report(tmp_path / "strong", 0.95), _report(tmp_path / "null", 0.0)
    output = predictors_data({("npo", 100): strong.tests, ("rmu", 100): null.tests, ("uniform", 100): None}, FAST)
    table, lines = output.tables["predictors_by_method"], SECTIONS["predictors_by_method"].markdown(output, FAST)
    row = table[(table["predictor"] == "confidence_finetuned")].set_index("method")
    assert row.loc["npo", "verdict"] == "significant" and row.loc["npo", "rho"] > 0.5
    assert row.loc["rmu", "verdict"] != "significant"
    assert row.loc["npo", "ci_low"] <= row.loc["npo", "rho"] <= row.loc["npo", "ci_high"]
    # the same numbers as the method's own report: nothing recomputed
    own = strong.tests
    own = own[(own["role"] == "primary") & (own["predictor"] == "confidence_finetuned")].iloc[0]
    assert row.loc["npo", "rho"] == own["statistic"] and row.loc["npo", "n_tasks"] == own["n"] == 12
    # a method without task-level tests is a row that says so, not a silent gap
    assert "no task-level tests" in table.loc[table["method"] == "uniform", "note"].iloc[0]
    assert lines[0] == "## What predicts forgetting, by method" and any("| npo | 100 |" in x for x in lines)
