"""Run dirs shared by two runners, or finished and read-only, are reported honestly.

- two runners on one run dir each printed "N steps ran" (2N claimed for N): a step another runner finished
  while this one waited for its lock now counts as already done;
- a finished study on a read-only filesystem failed writing ``config.yaml`` although there was nothing to do:
  a study with nothing to run writes nothing.
"""

from __future__ import annotations

import errno

import pytest
import yaml

from lm_forget.cli import main
from lm_forget.io import atomic_write_json


@pytest.fixture
def study(tmp_path, tiny_model_dir, mirror_dir, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump({
        "run_dir": str(tmp_path / "run"), "model": {"name_or_path": str(tiny_model_dir), "dtype": "float32"},
        "tasks": {"eval": ["forget_cola"]}, "stages": ["eval_pretrained"], "data": {"eval_size": 8},
        "eval": {"batch_size": 8}, "threads": 1}))
    return cfg


def _finish_elsewhere(step) -> None:
    """What another runner sharing the run dir leaves: the step's folder and its done.json."""
    step.dir.mkdir(parents=True, exist_ok=True)
    from lm_forget.run.key_schema import KEY_SCHEMA_FIELD, KEY_SCHEMA_VERSION

    atomic_write_json(step.done_path, {"step": step.name, "key": step.key, "kind": step.kind, "seconds": 1.0,
                                       KEY_SCHEMA_FIELD: KEY_SCHEMA_VERSION})


def test_a_step_another_runner_finished_is_not_counted_twice(study, monkeypatch):
    import contextlib

    from lm_forget.run import build_plan, execute, runner
    from lm_forget.run.config import load_run_config

    plan = build_plan(load_run_config(study))
    real_lock = runner._lock
    ran_elsewhere = []

    @contextlib.contextmanager
    def lock_held_by_the_other_runner(step):  # we wait for its lock; it finishes the step meanwhile
        _finish_elsewhere(step)
        ran_elsewhere.append(step.name)
        with real_lock(step):
            yield

    monkeypatch.setattr(runner, "_lock", lock_held_by_the_other_runner)
    summary = execute(plan)
    assert ran_elsewhere == ["eval_pretrained"]
    assert summary.count("ran") == 0 and summary.count("done") == 1


def test_a_finished_study_writes_nothing(study, capsys, monkeypatch):
    from lm_forget.run import build_plan, runner
    from lm_forget.run.config import load_run_config

    (step,) = build_plan(load_run_config(study)).steps
    _finish_elsewhere(step)

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(runner, "atomic_write_text", read_only)
    monkeypatch.setattr(runner, "atomic_write_json", read_only)
    assert main(["run", str(study)]) == 0, capsys.readouterr().err
    assert "0 step(s) ran, 1 already done" in capsys.readouterr().out
