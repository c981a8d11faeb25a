"""The shipped task YAMLs are exactly what the registry renders: one template, no hand-edited drift."""

from __future__ import annotations

import pytest

from lm_forget.data.registry import SUITE, TaskSpec, suite_task_names
from lm_forget.data.yaml_io import load_task_yaml_merged
from lm_forget.data.yamls import (
    FORMAT_TEMPLATE_NAME,
    REGENERATE,
    TEMPLATE_NAME,
    render_suite_yaml,
    suite_files,
    variant_files,
    write_suite_files,
)
from lm_forget.paths import task_configs_dir


def test_shipped_yamls_are_what_the_registry_generates():
    folder = task_configs_dir()
    expected = suite_files()
    shipped = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.yaml") if p.name != TEMPLATE_NAME}
    assert shipped == expected, f"task_configs/ differs from the registry: run `{REGENERATE}` and commit the result"
    assert sorted(n[:-5] for n in expected if n.startswith("forget_")) == sorted(suite_task_names())


def test_the_generator_writes_new_tasks_and_removes_stale_ones(tmp_path):
    (tmp_path / "forget_gone.yaml").write_text("task: forget_gone\n")
    written = write_suite_files(tmp_path)
    assert {p.name for p in written} == {*suite_files(), *variant_files(), FORMAT_TEMPLATE_NAME, "forget_gone.yaml"}
    assert not (tmp_path / "forget_gone.yaml").exists()
    assert write_suite_files(tmp_path) == [], "a second run changes nothing"


@pytest.mark.parametrize("spec", SUITE, ids=lambda s: s.name)
def test_each_suite_yaml_names_its_task_and_tags_it_forget(spec: TaskSpec):
    """Each generated file, merged with the template as lm-eval merges it, is the registry's task."""
    config = load_task_yaml_merged(task_configs_dir() / f"{spec.name}.yaml")
    assert config["task"] == spec.name and config["dataset_kwargs"] == {"forget_task": spec.name}
    assert config["tag"] == ["forget"] and (config["doc_to_text"] == "label") == spec.multi_context
    assert render_suite_yaml(spec).startswith(f"# {spec.name}: ")
