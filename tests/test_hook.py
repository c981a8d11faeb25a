"""The start-up hook: registers the suite with lm-eval's TaskManager, lazily, switchably, safely.

The suite behaves like lm-eval's built-ins: present whenever ``include_defaults`` is true, absent with
``include_defaults=False`` (lm-eval promises that such a manager indexes only ``include_path``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

from lm_forget import _startup
from lm_forget.data.registry import suite_task_names
from lm_forget.errors import ConfigError

PROBE = (
    "import json, os, sys; at_start = sorted(m for m in ('lm_eval', 'lm_forget', '_lm_forget_startup') "
    "if m in sys.modules); "
    "from lm_eval.tasks import TaskManager; "
    "defaults = os.environ.get('PROBE_DEFAULTS') == '1'; "
    "tm = TaskManager(include_defaults=defaults, include_path=os.environ.get('PROBE_INCLUDE') or None); "
    "print(json.dumps({'at_start': at_start, 'include_path': tm.include_path, "
    "'patched': hasattr(TaskManager.__init__, '__wrapped__'), "
    "'tasks': [t for t in tm.all_tasks if t.startswith(('forget', 'my_', 'lm_forget'))]}))"
)


def _probe(**env: str) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600,
                            env={**os.environ, **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _task_dir(root: Path, *names: str, tag: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        extra = f"tag: {tag}\n" if tag else ""
        (root / f"{name}.yaml").write_text(f"task: {name}\n{extra}dataset_path: json\noutput_type: multiple_choice\n")
    return root


def test_include_defaults_false_indexes_only_include_path(tmp_path):
    """lm-eval's own promise (its test_include_defaults_false_with_custom_path), with lm-forget installed."""
    mine = _task_dir(tmp_path / "mine", "my_task")
    out = _probe(PROBE_INCLUDE=str(mine), LM_FORGET_TASKS_DIR=str(_task_dir(tmp_path / "extra", "forget_extra")))
    assert out["at_start"] == ["_lm_forget_startup"], "the .pth must import neither lm_eval nor the lm_forget package"
    assert out["patched"] is True
    assert out["tasks"] == ["my_task"]
    assert out["include_path"] == str(mine)


def test_hook_can_be_switched_off(tmp_path):
    out = _probe(LM_FORGET_DISABLE_HOOK="1", PROBE_INCLUDE=str(_task_dir(tmp_path / "mine", "my_task")))
    assert out["at_start"] == [] and out["patched"] is False
    assert out["tasks"] == ["my_task"]


@pytest.mark.e2e
def test_defaults_bring_the_suite_merged_with_user_path_and_tasks_dir(tmp_path):
    """With lm-eval's defaults (~14k built-ins indexed: the slow one) the suite, the user's and our folders merge."""
    mine = _task_dir(tmp_path / "mine", "my_task")
    extra = _task_dir(tmp_path / "extra", "forget_extra", tag="forget")
    out = _probe(PROBE_DEFAULTS="1", PROBE_INCLUDE=str(mine), LM_FORGET_TASKS_DIR=str(extra))
    forget = [t for t in out["tasks"] if t.startswith("forget_")]
    assert sorted(forget) == sorted([*suite_task_names(), "forget_extra"])
    assert "my_task" in out["tasks"]
    assert "lm_forget_suite" in out["tasks"] and "forget" in out["tasks"]
    assert out["include_path"] == str(mine), "TaskManager.include_path records what the caller passed"


def test_lm_forget_task_manager_finds_the_suite_without_defaults_hook_on_or_off():
    code = ("import json, lm_forget; tm = lm_forget.task_manager(include_defaults=False); "
            "print(json.dumps([t for t in tm.all_tasks if t.startswith('forget_')]))")
    for env in ({}, {"LM_FORGET_DISABLE_HOOK": "1"}):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                                env={**os.environ, **env}, check=True)
        assert sorted(json.loads(result.stdout.strip().splitlines()[-1])) == sorted(suite_task_names()), env


def test_tasks_dir_shadowing_a_suite_task_is_refused_naming_both_files(tmp_path, monkeypatch):
    from lm_forget.harness import task_manager

    shadow = _task_dir(tmp_path / "shadow", "forget_boolq")
    monkeypatch.setenv("LM_FORGET_TASKS_DIR", str(shadow))
    index_logger = logging.getLogger("lm_eval.tasks._index")
    saved = index_logger.level
    index_logger.setLevel(logging.ERROR)  # lm_eval logging turned down must not hide the replacement
    try:
        with pytest.raises(ConfigError) as info:
            task_manager(include_defaults=False)
        assert index_logger.level == logging.ERROR
    finally:
        index_logger.setLevel(saved)
    message = str(info.value)
    assert str(shadow / "forget_boolq.yaml") in message
    assert str(Path(_startup.shipped_task_dir()) / "forget_boolq.yaml") in message
    assert "suite task" in message and "LM_FORGET_TASKS_DIR" in message and "--include_path" in message


def test_tasks_dir_shadowing_a_builtin_task_is_refused(tmp_path, monkeypatch):
    """lm-eval's real index, over its real built-in boolq folder and a tasks dir redefining ``boolq``."""
    import lm_eval.tasks
    from lm_eval.tasks._index import TaskIndex

    builtin = Path(lm_eval.tasks.__file__).parent / "super_glue" / "boolq"
    shadow = _task_dir(tmp_path / "shadow", "boolq")
    monkeypatch.setenv("LM_FORGET_TASKS_DIR", str(shadow))
    with pytest.raises(ConfigError, match="built-in task") as info:
        _startup.call_refusing_shadows(TaskIndex.build, [builtin, shadow])
    assert str(builtin / "default.yaml") in str(info.value) and str(shadow / "boolq.yaml") in str(info.value)


def test_tasks_dir_with_new_names_and_the_forget_tag_is_accepted(tmp_path, monkeypatch):
    from lm_forget.harness import task_manager

    monkeypatch.setenv("LM_FORGET_TASKS_DIR", str(_task_dir(tmp_path / "extra", "forget_extra", tag="forget")))
    tm = task_manager(include_defaults=False)
    assert "forget_extra" in tm.all_tasks and "forget_boolq" in tm.all_tasks


def test_merge_include_paths_keeps_user_paths_last_and_deduplicates(tmp_path):
    ours = [str(tmp_path / "suite")]
    assert _startup.merge_include_paths(None, ours) == ours
    assert _startup.merge_include_paths(str(tmp_path / "u"), ours) == [*ours, str(tmp_path / "u")]
    both = f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"
    assert _startup.merge_include_paths(both, ours) == [*ours, str(tmp_path / "a"), str(tmp_path / "b")]
    assert _startup.merge_include_paths([ours[0]], ours) == ours


def test_changed_signature_degrades_to_a_noop_with_one_warning():
    class TaskManager:
        def __init__(self, paths=None):
            self.paths = paths

    fake = types.SimpleNamespace(TaskManager=TaskManager)
    original = TaskManager.__init__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _startup.patch_task_manager(fake) is False
    assert len(caught) == 1 and "signature changed" in str(caught[0].message)
    assert TaskManager.__init__ is original


def test_patch_is_idempotent_and_leaves_include_defaults_false_alone(monkeypatch):
    monkeypatch.delenv("LM_FORGET_TASKS_DIR", raising=False)
    calls = []

    class TaskManager:
        def __init__(self, verbosity=None, include_path=None, include_defaults=True, metadata=None):
            calls.append(include_path)
            self.include_path = include_path

    fake = types.SimpleNamespace(TaskManager=TaskManager)
    assert _startup.patch_task_manager(fake) and _startup.patch_task_manager(fake)
    tm = TaskManager(include_path="/user/tasks")
    assert len(calls) == 1 and calls[0][-1] == "/user/tasks" and calls[0][0].endswith("task_configs")
    assert tm.include_path == "/user/tasks"
    TaskManager(None, "/user/tasks", False)
    assert calls[-1] == "/user/tasks"
