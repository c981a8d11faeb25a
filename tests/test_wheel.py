"""The built wheel ships task_configs/, hub_cards/ and the start-up hook, and works from a plain install."""

from __future__ import annotations

import json
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lm_forget.data.registry import suite_task_names

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    return next(out.glob("lm_forget-*.whl"))


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "lm_forget_startup.pth" in names and "_lm_forget_startup.py" in names
    assert "lm_forget/task_configs/_forget_template.yaml" in names
    assert {n for n in names if n.startswith("lm_forget/task_configs/forget_")} == {
        f"lm_forget/task_configs/{name}.yaml" for name in suite_task_names()}
    assert "lm_forget/task_configs/lm_forget_suite.yaml" in names
    assert any(n.startswith("lm_forget/hub_cards/") for n in names)


def test_plain_install_registers_the_suite(tmp_path, wheel):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    target = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    # dependencies come from the test environment; lm_forget itself only from the wheel
    (target / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, capture_output=True, timeout=600)
    probe = ("import json, sys; at_start = [m for m in ('lm_forget', 'lm_eval') if m in sys.modules]; "
             "hook = sys.modules['_lm_forget_startup'].__file__; "
             "from lm_eval.tasks import TaskManager; import lm_forget, lm_forget._startup as s; "
             "tm = lm_forget.task_manager(include_defaults=False); "
             "tasks = [t for t in tm.all_tasks if t.startswith('forget_')]; "
             "print(json.dumps({'file': lm_forget.__file__, 'hook': hook, 'at_start': at_start, "
             "'patched': hasattr(TaskManager.__init__, '__wrapped__'), 'suite': s.shipped_task_dir(), "
             "'tasks': tasks}))")
    result = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["file"].startswith(str(target)), "imported from the wheel, not the checkout"
    assert out["hook"].startswith(str(target)) and out["at_start"] == [], "the .pth imports only the tiny module"
    assert out["patched"] and out["suite"].startswith(str(target))
    assert sorted(out["tasks"]) == sorted(suite_task_names())
