"""``api.compute`` returns the results object and writes nothing; render + writer turn it into the report
``analyze`` writes."""

from __future__ import annotations

import pytest

from lm_forget.analysis.api import AnalysisResults, analyze, compute
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.render import Rendered, render
from lm_forget.analysis.simulate import correlated_tasks, simulate_phases, write_study
from lm_forget.analysis.writer import write_report

FAST = AnalysisOptions(n_bootstrap=200, n_permutations=200, n_power=100, predictors=("confidence",),
                       formats=("png",))


def _files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.e2e
def test_compute_returns_results_and_writes_nothing(tmp_path, monkeypatch):
    folders = write_study(tmp_path / "inputs", simulate_phases(correlated_tasks(6, rho=0.9, seed=1), seed=1))
    folders.pop("control", None)
    empty = tmp_path / "cwd"
    empty.mkdir()
    monkeypatch.chdir(empty)
    before = _files(tmp_path)
    res = compute(**folders, options=FAST)
    assert isinstance(res, AnalysisResults)
    assert set(res.metrics["task"]) == {f"forget_p{i:02d}" for i in range(6)} and len(res.tests)
    assert _files(tmp_path) == before and not any(empty.iterdir())

    rendered = render(res)  # still nothing written: the figures are matplotlib objects
    assert isinstance(rendered, Rendered) and "figures/accuracy_bars" in rendered.figures
    assert rendered.markdown().startswith("# Forgetting analysis") and "metrics" in rendered.tables
    assert _files(tmp_path) == before

    written = write_report(rendered, tmp_path / "report")
    whole = analyze(**folders, out=tmp_path / "whole", options=FAST)
    for name in ("index.md", "index.html", "metrics.csv", "docs.csv", "options.json", "figures/accuracy_bars.png"):
        assert (written / name).read_bytes() == (whole / name).read_bytes(), name
