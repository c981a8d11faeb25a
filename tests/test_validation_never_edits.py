"""Validation never edits a config: normalised values (expanded task lists, registered method names, the
per-task fine-tune tasks) are new values built by the schema's validators or returned by ``validate_config``."""

from __future__ import annotations

import copy

import pytest

from lm_forget.data.registry import suite_task_names
from lm_forget.errors import ConfigError
from lm_forget.run import run_config_from_dict
from lm_forget.run.config import validate_config
from lm_forget.run.schema import MethodSpec, RunConfig


def _data(tmp_path, **changes):
    return {"run_dir": str(tmp_path / "run"), "model": {"name_or_path": "some/model"},
            "tasks": {"finetune": ["suite"], "forget": ["forget_c*"], "eval": ["forget_cola", "forget_cola"]},
            "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget"],
            "forget": {"methods": ["flipped_labels", {"name": "random_labels", "label": "rl"}]}, **changes}


def test_loading_leaves_the_written_mapping_as_it_was(tmp_path):
    data = _data(tmp_path)
    written = copy.deepcopy(data)
    config = run_config_from_dict(data)
    assert data == written
    assert config.tasks.finetune == suite_task_names() and config.tasks.eval == ["forget_cola"]
    assert config.tasks.forget == ["forget_commonsense_qa", "forget_cola", "forget_cb"]
    assert [m.name for m in config.forget.methods] == ["flipped_labels", "random_labels"]


def test_validate_config_returns_a_new_config_and_leaves_its_argument_alone(tmp_path):
    data = _data(tmp_path, tasks={"forget": ["forget_cola", "forget_openbookqa"]},
                 finetune={"per_task": True})
    data["tasks"]["eval"] = ["forget_cola"]
    raw = RunConfig.model_validate(data, context={"base_dir": str(tmp_path)})
    before = raw.model_dump()
    checked = validate_config(raw)
    assert raw.model_dump() == before, "validate_config edited the config it checked"
    assert raw.tasks.finetune == [] and checked.tasks.finetune == ["forget_cola", "forget_openbookqa"]
    assert checked is not raw and checked.run_path == raw.run_path


def test_the_sections_own_validators_return_new_values(tmp_path):
    spec = MethodSpec(name="flipped_labels")
    assert spec.name == "flipped_labels" and spec.id == "flipped_labels"  # from MethodSpec's validator
    with pytest.raises(ValueError, match="unknown forgetting method 'npoo'. Did you mean 'npo'"):
        MethodSpec(name="npoo")
    with pytest.raises(ConfigError, match=r"tasks.task_dirs: .*missing is not a folder of task YAMLs"):
        run_config_from_dict(_data(tmp_path, tasks={"task_dirs": ["missing"], "forget": ["forget_cola"]}),
                             base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"tasks.forget: pattern 'forget_zz\*' matches no known task"):
        run_config_from_dict(_data(tmp_path, tasks={"forget": ["forget_zz*"]}))


@pytest.mark.parametrize(("changes", "expected"), [
    ({"seeds": {"forget": [0, 0]}}, "config.seeds.forget: [0, 0] has duplicates"),
    ({"seeds": []}, "config.seeds.forget: empty; give at least one seed"),
    ({"forget": {"num_examples": [0, 8]}}, "config.forget.num_examples: [0, 8]: each size must be a positive number"),
    ({"forget": {"num_examples": []}}, "config.forget.num_examples: empty; give forget-set sizes"),
    ({"forget": {"methods": [{"name": "npo", "label": "a/b"}]}},
     "config.forget.methods[0].label: 'a/b'; use a short name without '/'"),
    ({"analysis": {"options": {"margin": 0.7}}}, "analysis.options: margin must lie strictly between 0 and 0.5"),
    ({"forget": {"dynamics_every": 0}}, "config.forget.dynamics_every: 0.0; give a positive number of steps"),
    ({"finetune": {"dynamics_every": 0.25, "launcher": ["ddp"]}},
     "config.finetune.dynamics_every: 0.25; give a positive number of steps (or a fraction of an epoch < 1), with "
     "in-process training (no launcher)."),
])
def test_one_section_checks_live_in_the_sections_validators(tmp_path, changes, expected):
    """Seeds, forget-set sizes, method labels and analysis options are checked by their own sections."""
    with pytest.raises(ConfigError) as info:
        run_config_from_dict({**_data(tmp_path), **changes})
    assert expected in str(info.value)
