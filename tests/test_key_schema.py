"""One step-key schema version: recorded in every step record (never hashed), other versions refused."""

from __future__ import annotations

import json

import pytest

from lm_forget.errors import ConfigError
from lm_forget.io import atomic_write_json
from lm_forget.run import build_plan, execute, run_config_from_dict
from lm_forget.run import runner as runner_module
from lm_forget.run.key_schema import KEY_SCHEMA_FIELD, KEY_SCHEMA_VERSION
from lm_forget.run.runner import RunContext, run_step

CONFIG = {"model": {"name_or_path": "some/model"}, "stages": ["eval_pretrained"],
          "tasks": {"eval": ["forget_cola"]}}


def _plan(tmp_path):
    return build_plan(run_config_from_dict({**CONFIG, "run_dir": str(tmp_path / "run")}))


def test_every_step_record_carries_the_version_outside_the_hashed_settings(tmp_path, monkeypatch):
    plan = _plan(tmp_path)
    step = plan.step("eval_pretrained")
    assert KEY_SCHEMA_FIELD not in json.dumps(step.settings), "the version is recorded, never hashed"
    monkeypatch.setitem(runner_module.EXECUTORS, "eval", lambda step, ctx: {"scores": {}})
    record, ran = run_step(step, RunContext(plan, pool=None))
    assert ran and record[KEY_SCHEMA_FIELD] == KEY_SCHEMA_VERSION
    assert json.loads(step.done_path.read_text())[KEY_SCHEMA_FIELD] == KEY_SCHEMA_VERSION
    assert json.loads((step.dir / "settings.json").read_text())[KEY_SCHEMA_FIELD] == KEY_SCHEMA_VERSION
    assert execute(plan, dry_run=True).rows[0]["status"] == "done"


@pytest.mark.parametrize("record", ["done.json", "settings.json"])
def test_a_study_written_with_another_key_schema_is_refused_not_rekeyed(tmp_path, record):
    plan = _plan(tmp_path)
    old = plan.step("eval_pretrained").dir.parent / "all-0123456789ab" / record
    atomic_write_json(old, {"step": "eval_pretrained", KEY_SCHEMA_FIELD: KEY_SCHEMA_VERSION + 1})
    for dry_run in (True, False):
        with pytest.raises(ConfigError) as info:
            execute(plan, dry_run=dry_run)
        message = str(info.value)
        assert f"step-key schema {KEY_SCHEMA_VERSION + 1}" in message and str(old.parent) in message
        assert f"writes schema {KEY_SCHEMA_VERSION}" in message and "new run_dir (--run-dir DIR)" in message
    assert not plan.step("eval_pretrained").dir.exists(), "nothing was re-run beside the old step"


def test_records_from_before_the_version_was_recorded_are_schema_1_and_refused(tmp_path):
    """A done.json without the field was written in form 1 (forget steps hashed label_mode); since form 2 it is
    refused like any other version, never re-keyed."""
    assert KEY_SCHEMA_VERSION == 2
    plan = _plan(tmp_path)
    step = plan.step("eval_pretrained")
    atomic_write_json(step.done_path, {"step": step.name, "key": step.key})
    with pytest.raises(ConfigError, match="step-key schema 1"):
        execute(plan, dry_run=True)


def test_forget_steps_hash_their_method(tmp_path):
    config = {"model": {"name_or_path": "some/model"}, "run_dir": str(tmp_path / "run"),
              "stages": ["finetune", "forget"], "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola"]}}
    random = build_plan(run_config_from_dict(config)).step("forget/forget_cola/n1000/s0")
    flipped = build_plan(run_config_from_dict({**config, "forget": {"method": "flipped_labels"}}))
    assert random.settings["train"]["method"] == {"name": "random_labels"}
    assert "label_mode" not in random.settings["train"]
    assert flipped.step("forget/forget_cola/n1000/s0").key != random.key
