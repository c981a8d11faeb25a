"""Every report opens with its findings in plain words, one line per claim of the abstract, and writes the same
findings to findings.json, which the demo's printout reads (planted truth from lm_forget.analysis.simulate)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from lm_forget.analysis.api import analyze
from lm_forget.analysis.findings import CLAIMS, FINDINGS_FILE, Finding, Findings
from lm_forget.analysis.findings_build import study_findings, tasks_needed
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.protocol_report import ProtocolCell, protocol_rows
from lm_forget.analysis.relearn_report import RelearnCell, cell_row
from lm_forget.analysis.simulate import PlantedTask, simulate_phases, write_study
from lm_forget.demo.findings import findings_lines

FAST = AnalysisOptions(n_bootstrap=300, n_permutations=300, n_power=100, formats=("png",))
ABSTRACT = ["forget_set", "held_out", "behaviours", "difficulty", "confidence", "variance", "probes"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Three planted tasks: one kept, one partial, one back to pretrained (too few tasks for the predictors)."""
    root = tmp_path_factory.mktemp("findings")
    tasks = [PlantedTask("forget_kept", 400, 0.55, 0.9, 0.9), PlantedTask("forget_partial", 1000, 0.5, 0.95, 0.72),
             PlantedTask("forget_pre", 1000, 0.55, 0.9, 0.55)]
    phases = write_study(root / "study", simulate_phases(tasks, seed=3))
    return analyze(**phases, out=root / "report", options=FAST)


def test_report_opens_with_findings_one_line_per_claim(report):
    md = (report / "index.md").read_text()
    assert md.split("\n## ")[1].startswith("Findings")  # the first section
    from lm_forget.analysis.api import findings as read_findings

    findings = read_findings(report)  # the notebook API reads the same file
    assert [f.claim for f in findings.items] == ABSTRACT
    section = md.split("## Findings", 1)[1].split("\n## ", 1)[0]
    for claim in ABSTRACT:
        assert sum(line.startswith(f"- {CLAIMS[claim]}: ") for line in section.splitlines()) == 1
    behaviours = findings.get("behaviours")
    assert behaviours.verdict == "3 categories decided"
    assert "kept: 1" in behaviours.text and "partial: 1" in behaviours.text and "to_pretrained: 1" in behaviours.text
    assert findings.get("held_out").verdict == "varies by task" and "Kruskal-Wallis across 3 tasks" in section
    metrics = pd.read_csv(report / "metrics.csv").set_index("task")
    assert metrics.loc["forget_partial", "behaviour"] == "partial"


def test_untestable_predictors_say_so_once_instead_of_a_table_of_dashes(report):
    findings = Findings.read(report)
    needed = tasks_needed(4, FAST)  # difficulty and confidence, two phases each
    for claim in ("difficulty", "confidence"):
        f = findings.get(claim)
        assert (f.verdict, f.testable, f.n, f.n_needed) == ("not testable here", False, 3, needed)
        assert f.text == f"not testable here: needs >= {needed} tasks (this report has 3)."
    md = (report / "index.md").read_text()
    section = md.split("## Predictors of forgetting (task level)", 1)[1].split("\n## ", 1)[0]
    assert f"No task-level test could run: needs >= {needed} tasks" in section and "| predictor |" not in section
    assert md.count("not tested (skipped") == 0
    assert findings.get("variance").verdict == "not in this report"


def test_findings_json_is_one_typed_object():
    f = Findings("study", {"margin": 0.1}, [Finding("forget_set", "near chance in 1 of 1 forget sets", "x",
                                                    0.5, math.nan, 0.6, 80, 84, details=["d"])])
    text = f.to_json()
    data = json.loads(text)
    assert data["schema"] == "lm-forget/findings/v1" and data["findings"][0]["low"] is None
    assert data["findings"][0]["title"] == CLAIMS["forget_set"]
    back = Findings.from_dict(data)
    assert back.items[0].verdict == f.items[0].verdict and back.items[0].details == ["d"]
    assert back.lines() == [f"{CLAIMS['forget_set']}: x", "    d"]


def _relearn_cell(tmp_path, name: str, relearned: float) -> RelearnCell:
    """held-out accuracy 0.9 fine-tuned, 0.5 after forgetting, ``relearned`` after relearning."""
    ph = write_study(tmp_path / name, simulate_phases([PlantedTask(name, 300, 0.5, 0.9, relearned)], seed=2))
    return RelearnCell(name, 100, 0, 8, "forget_set",
                       held_out={"finetuned": ph["finetuned"], "forget": ph["pretrained"], "relearn": ph["forget"]})


def test_study_findings_and_the_demo_printout_read_findings_json(tmp_path):
    opts = AnalysisOptions()
    ph = write_study(tmp_path / "fs", simulate_phases([PlantedTask("t_gone", 400, 0.5, 0.9, 0.5),
                                                       PlantedTask("t_small", 40, 0.5, 0.9, 0.5)], seed=4))
    cells = [ProtocolCell(t, 400, 0, forget_set={"forget": ph["forget"]}, held_out={"forget": ph["finetuned"]})
             for t in ("t_gone", "t_small")]
    relearn = [cell_row(_relearn_cell(tmp_path, "t_back", 0.9), opts),
               cell_row(_relearn_cell(tmp_path, "t_flat", 0.5), opts)]
    assert [r["relearn_verdict"] for r in relearn] == ["relearned", "not relearned"]
    assert math.isfinite(relearn[0]["recovered_share"]) and relearn[0]["note"] == ""
    orders = [("n400-s0", pd.DataFrame([{"task": "t_gone", "n_docs": 400, "n_qualifying": 120, "spearman": 0.4,
                                          "ci_low": 0.2, "ci_high": 0.6, "note": ""}]))]
    findings = study_findings(None, opts, protocol=protocol_rows(cells, opts), orders=orders, relearn=relearn)
    (tmp_path / FINDINGS_FILE).write_text(findings.to_json())
    lines = findings_lines(tmp_path)
    text = "\n".join(lines)
    assert lines[0].startswith("findings (tests at alpha = 0.05, margin 0.1")
    assert f"  {CLAIMS['forget_set']}: near chance in 1 of 2 forget sets" in text
    assert "t_small (N = 40 docs, seed 0): forget set" in text and "-> needs >= 84 docs" in text
    assert "relearned in 1 of 2 cells" in text and "t_flat k=8 (N = 300 docs)" in text
    assert "n400-s0 t_gone (120 of 400 docs learned and forgotten): rho 0.40 [0.20, 0.60]" in text
    assert findings_lines(tmp_path / "nowhere")[0].startswith("findings: not in the report")


def test_a_verdict_reachable_at_small_n_is_still_given(tmp_path):
    opts = AnalysisOptions()
    ph = write_study(tmp_path / "fs", simulate_phases([PlantedTask("t_kept", 40, 0.5, 0.95, 0.95)], seed=4))
    cell = ProtocolCell("t_kept", 40, 0, forget_set={"forget": ph["forget"]})
    finding = study_findings(None, opts, protocol=protocol_rows([cell], opts)).get("forget_set")
    assert finding.testable and finding.verdict == "near chance in 0 of 1 forget sets"
    assert "did not take: 1" in finding.text  # 40 docs cannot show near chance, but can show it did not take


def test_the_contrast_figure_shows_every_forget_cell(tmp_path):
    ph = write_study(tmp_path / "fs", simulate_phases([PlantedTask("t_a", 100, 0.5, 0.9, 0.5),
                                                       PlantedTask("t_b", 100, 0.5, 0.9, 0.8)], seed=5))
    cells = [ProtocolCell(t, 100, 0, forget_set=dict(ph), held_out=dict(ph), other_tasks=[o])
             for t, o in (("t_a", "t_b"), ("t_b", "t_a"))]
    from lm_forget.analysis.options import AnalysisOptions
    from lm_forget.analysis.protocol_report import forget_set_data, render_forget_set

    data = forget_set_data([(None, protocol_rows(cells))], tmp_path / "report" / "protocol", tmp_path / "report")
    lines = render_forget_set(data, AnalysisOptions())
    png = tmp_path / "report" / "protocol" / "contrast.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "](protocol/contrast.png)" in "\n".join(lines)
