"""The start-up hook: registers the suite with lm-eval's TaskManager, lazily, switchably, safely."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import warnings

from lm_forget import _startup

PROBE = (
    "import json, sys; before = 'lm_eval' in sys.modules; "
    "from lm_eval.tasks import TaskManager; "
    "import os; extra = os.environ.get('PROBE_INCLUDE'); "
    "tm = TaskManager(include_defaults=False, include_path=extra) if extra else TaskManager(include_defaults=False); "
    "print(json.dumps({'before': before, 'tasks': sorted(tm.all_tasks)}))"
)


def _probe(**env: str) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **env}, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_hook_registers_suite_without_importing_lm_eval_at_startup():
    out = _probe()
    assert out["before"] is False, "the .pth hook must not import lm_eval at interpreter start"
    forget = [t for t in out["tasks"] if t.startswith("forget_")]
    assert len(forget) == 21
    assert "lm_forget_suite" in out["tasks"] and "forget" in out["tasks"]


def test_hook_can_be_switched_off():
    out = _probe(LM_FORGET_DISABLE_HOOK="1")
    assert not [t for t in out["tasks"] if t.startswith("forget_")]


def test_hook_merges_user_include_path_and_tasks_dir(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "my_task.yaml").write_text("task: my_task\ndataset_path: json\noutput_type: multiple_choice\n")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "forget_extra.yaml").write_text("task: forget_extra\ndataset_path: json\noutput_type: multiple_choice\n")
    out = _probe(PROBE_INCLUDE=str(mine), LM_FORGET_TASKS_DIR=str(extra))
    assert "my_task" in out["tasks"] and "forget_extra" in out["tasks"] and "forget_boolq" in out["tasks"]


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


def test_patch_is_idempotent():
    calls = []

    class TaskManager:
        def __init__(self, verbosity=None, include_path=None, include_defaults=True, metadata=None):
            calls.append(include_path)

    fake = types.SimpleNamespace(TaskManager=TaskManager)
    assert _startup.patch_task_manager(fake) and _startup.patch_task_manager(fake)
    TaskManager(include_path="/user/tasks")
    assert len(calls) == 1 and calls[0][-1] == "/user/tasks" and calls[0][0].endswith("task_configs")
