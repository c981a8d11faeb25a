"""``lm-forget analyze --help`` lists every AnalysisOptions field with its description (field metadata)."""

from __future__ import annotations

from dataclasses import fields

from lm_forget.analysis.cli import analyze_parser
from lm_forget.analysis.options import AnalysisOptions


def test_every_option_has_its_help_in_analyze_help():
    actions = {a.dest: a for a in analyze_parser()._actions}
    text = " ".join(analyze_parser().format_help().split())
    for f in fields(AnalysisOptions):
        help_text = f.metadata["help"]
        assert help_text and actions[f.name].help.startswith(help_text), f.name
        assert f"--{f.name.replace('_', '-')}" in text or f"--{f.name}" in text
        assert " ".join(help_text.split()) in text, f.name


def test_cli_options_parse_into_analysis_options():
    a = analyze_parser().parse_args(["--pretrained", "p", "--finetuned", "f", "--forget", "g", "--out", "o",
                                     "--n-bootstrap", "10", "--formats", "png", "--outcome", "forget_gap"])
    assert (a.n_bootstrap, a.formats, a.outcome) == (10, "png", "forget_gap")
    assert AnalysisOptions().n_bootstrap == 2000
