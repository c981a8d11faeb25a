"""The study report's sections are registered: one builder per section, one writer for every table."""

from __future__ import annotations

import pandas as pd
import pytest

from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.sections import (
    SECTIONS,
    SectionData,
    StudyContext,
    build_sections,
    records,
    register_section,
    registered_sections,
    table_frame,
)
from lm_forget.run import build_plan, run_config_from_dict


def test_every_study_feature_registers_its_section_in_index_order():
    names = [s.name for s in registered_sections()]
    assert names == ["forget_set", "dynamics", "methods", "predictors_by_method", "relearn", "utility", "deep"]
    assert {s.name: s.folder for s in registered_sections()}["dynamics"] == "protocol"


def test_a_registered_section_reaches_the_index_and_its_tables(tmp_path):
    """A new section is one decorated builder and its renderer: built once into the study's results, rendered from
    its table alone, its table written once, its text placed by order."""
    from lm_forget.analysis.findings import Findings
    from lm_forget.analysis.study_index import REPORTS_TABLE, render_study, write_study
    from lm_forget.api.study_results import StudyResults

    plan = build_plan(run_config_from_dict({
        "model": {"name_or_path": "some/model"}, "run_dir": str(tmp_path / "run"),
        "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola"], "eval": ["forget_cola"]},
        "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "analyze"],
        "forget": {"num_examples": [100]}}))
    seen = []

    def render(data: SectionData, options: AnalysisOptions) -> list[str]:
        return [f"{len(data.tables['planted'])} cell(s) at level {options.confidence_level:g}:",
                *(f"- {r['cell']}" for r in records(data.tables["planted"]))]

    @register_section("planted", order=45, title="Planted", render=render)
    def planted(ctx: StudyContext) -> SectionData:
        seen.append(ctx)
        return SectionData({"planted": pd.DataFrame({"cell": [c.id for c in ctx.plan.cells]})},
                           findings={"relearn": []})

    try:
        with pytest.raises(ValueError, match="registered twice"):
            register_section("planted", order=1, title="x", render=render)(lambda ctx: None)
        out = tmp_path / "out"
        sections = build_sections(StudyContext(plan, AnalysisOptions(confidence_level=0.9), out))
        assert len(seen) == 1 and seen[0].out == out
        assert list(sections) == ["forget_set", "planted"]  # nothing evaluated: no other section applies
        results = StudyResults(metrics=pd.DataFrame(), tests=pd.DataFrame(), example_tests=pd.DataFrame(),
                               findings=Findings("study"), options=AnalysisOptions(confidence_level=0.9).to_dict(),
                               tables={REPORTS_TABLE: pd.DataFrame(columns=["label", "pooled"]),
                                       "planted/planted": sections["planted"].tables["planted"]},
                               sections={"planted": sections["planted"]}, title="t", description="d")
        text = render_study(results)
        out.mkdir(parents=True, exist_ok=True)
        write_study(results, out)
    finally:
        SECTIONS.pop("planted")
    assert "## Planted\n\n1 cell(s) at level 0.9:\n- forget_cola/n100/s0" in text
    assert "Tables as CSV: `planted/planted.csv`." in text
    assert list(pd.read_csv(out / "planted" / "planted.csv")["cell"]) == ["forget_cola/n100/s0"]
    assert "## Planted" in (out / "planted" / "planted.md").read_text()
    assert (out / "index.md").read_text() == text and "<h2>Planted</h2>" in (out / "index.html").read_text()
    assert "planted" not in [s.name for s in registered_sections()]


def test_section_tables_keep_integer_columns_and_renderers_see_missing_cells_as_absent():
    frame = table_frame([{"n": 64, "x": 0.5}, {"x": float("nan"), "note": "not evaluated"}])
    assert str(frame["n"].dtype) == "Int64"
    assert frame.to_csv(index=False).splitlines()[1:] == ["64,0.5,", ",,not evaluated"]
    assert records(frame) == [{"n": 64, "x": 0.5}, {"note": "not evaluated"}]
