"""The shipped task YAMLs are exactly what the registry renders: one template, no hand-edited drift."""

from __future__ import annotations

from lm_forget.data.registry import SUITE, suite_task_names
from lm_forget.data.yamls import render_group_yaml, render_suite_yaml
from lm_forget.paths import task_configs_dir


def test_shipped_yamls_match_the_registry():
    folder = task_configs_dir()
    for spec in SUITE:
        assert (folder / f"{spec.name}.yaml").read_text(encoding="utf-8") == render_suite_yaml(spec), spec.name
    assert (folder / "lm_forget_suite.yaml").read_text(encoding="utf-8") == render_group_yaml(suite_task_names())
    shipped = {p.stem for p in folder.glob("forget_*.yaml")}
    assert shipped == set(suite_task_names())
