"""The per-size report's parts are registered: adding one is one decorated function in one ``*_parts`` module,
placed by its order in the report and in the Summary."""

from __future__ import annotations

import pytest

from lm_forget.analysis.api import compute
from lm_forget.analysis.control import control_lines
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.parts import PARTS, PartContext, register_part, registered_parts
from lm_forget.analysis.render import render
from lm_forget.analysis.simulate import simulate_noise, write_study
from lm_forget.analysis.writer import close_figures

FAST = AnalysisOptions(n_bootstrap=50, n_permutations=50, n_power=20, predictors=("confidence",), formats=("png",))


def test_every_part_of_a_per_size_report_is_registered_in_report_order():
    assert [p.name for p in registered_parts()] == ["accuracies", "task_predictors", "example_predictors",
                                                    "features", "matrix", "control", "probes"]


def test_a_registered_part_reaches_the_report_and_its_summary_at_its_order(tmp_path):
    """A planted part between the matrix (50) and the control (60): its blocks land right before the control
    part's, its Summary line right before the control's lines; nothing else in the report moves."""
    res = compute(**write_study(tmp_path / "in", simulate_noise([f"forget_n{i}" for i in range(4)], 60, seed=2)),
                  options=FAST)
    assert res.control
    before = render(res)
    seen = []

    @register_part("planted", order=55)
    def planted(ctx: PartContext) -> list[str]:
        seen.append(ctx)
        ctx.rendered.tables["planted"] = ctx.res.metrics[["task"]]
        ctx.report.heading("Planted part")
        ctx.report.para(f"{len(ctx.res.metrics)} task(s) at level {ctx.options.confidence_level:g}.")
        return ["Planted: one summary line."]

    try:
        with pytest.raises(ValueError, match="registered twice"):
            register_part("planted", order=1)(lambda ctx: [])
        after = render(res)
    finally:
        PARTS.pop("planted")
    close_figures(before)
    close_figures(after)
    assert len(seen) == 1 and seen[0].res is res and seen[0].matrix is None
    assert list(after.tables["planted"]["task"]) == list(res.metrics["task"])
    control = "## Example level against a control cell (no targeted forgetting)"
    first_control_line = f"- {control_lines(res.control_excess, res.options)[0]}\n"
    md, expected = after.markdown(), before.markdown()
    expected = expected.replace(control, f"## Planted part\n\n4 task(s) at level 0.95.\n\n{control}")
    expected = expected.replace(first_control_line, f"- Planted: one summary line.\n{first_control_line}", 1)
    assert md == expected and md != before.markdown()
    summary = md.split("## Summary\n\n")[1].split("\n\n")[0].splitlines()
    assert summary.index("- Planted: one summary line.") == summary.index(first_control_line.strip()) - 1
    assert summary[0].startswith("- Behaviours on the test docs")
    assert "planted" not in [p.name for p in registered_parts()]
