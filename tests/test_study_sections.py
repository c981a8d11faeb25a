"""The study report's sections are registered: one builder per section, one writer for every table."""

from __future__ import annotations

import pandas as pd
import pytest

from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.sections import (
    SECTIONS,
    SectionOutput,
    StudyContext,
    register_section,
    registered_sections,
    write_sections,
)
from lm_forget.run import build_plan, run_config_from_dict


def test_every_study_feature_registers_its_section_in_index_order():
    names = [s.name for s in registered_sections()]
    assert names == ["forget_set", "dynamics", "methods", "predictors_by_method", "relearn", "utility", "deep"]
    assert {s.name: s.folder for s in registered_sections()}["dynamics"] == "protocol"


def test_a_registered_section_reaches_the_index_and_its_tables(tmp_path):
    """A new section is one decorated function: it is built, its table written once, its text placed by order."""
    plan = build_plan(run_config_from_dict({
        "model": {"name_or_path": "some/model"}, "run_dir": str(tmp_path / "run"),
        "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola"], "eval": ["forget_cola"]},
        "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "analyze"],
        "forget": {"num_examples": [100]}}))
    seen = []

    @register_section("planted", order=45)
    def planted(ctx: StudyContext) -> SectionOutput:
        seen.append(ctx)
        cells = [c.id for c in ctx.plan.cells]
        return SectionOutput("## Planted", ["one row per cell:", ""], {"planted": pd.DataFrame({"cell": cells})},
                             {"relearn": []})

    try:
        with pytest.raises(ValueError, match="registered twice"):
            register_section("planted", order=1)(lambda ctx: None)
        out = tmp_path / "out"
        built = write_sections(StudyContext(plan, AnalysisOptions(), out))
    finally:
        SECTIONS.pop("planted")
    assert len(seen) == 1 and seen[0].out == out
    assert list(pd.read_csv(out / "planted" / "planted.csv")["cell"]) == ["forget_cola/n100/s0"]
    assert built.tables["planted/planted"].equals(pd.DataFrame({"cell": ["forget_cola/n100/s0"]}))
    assert "## Planted" in (out / "planted" / "planted.md").read_text()
    titles = [line for line in built.lines if line.startswith("## ")]
    assert titles == ["## Forget set vs held-out", "## Planted"]  # nothing evaluated: no other section applies
    assert "Tables as CSV: `planted/planted.csv`." in built.lines and built.findings["relearn"] == []
    assert "planted" not in [s.name for s in registered_sections()]
