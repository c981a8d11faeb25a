"""Building the studies the suite shares: each expensive study is built once (session fixtures in conftest.py)
and read by every test that only reads it; a test that changes one works on a copy (``copy_study``).

Copies reuse finished steps: a step's key hashes its settings, which name the model and task folders by their
resolved paths, not the run folder. ``copy_study`` therefore links the copy's model and task folders to the
original's, so every step of the copy keeps its key (tests/test_studies.py checks it).
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

# the loggers `lm-forget demo` quiets for its own output (lm_forget.demo.cli._quiet_libraries); restored after an
# in-process call so caplog tests that run later in the same worker still see INFO records
_DEMO_QUIETED = ("lm_eval", "transformers", "datasets", "filelock", "peft", "trl", "lm_forget.analysis",
                 "lm_forget.train", "lm_forget.run", "lm_forget.data")


@dataclass
class CliResult:
    """An in-process ``lm-forget`` call: exit code and what it printed."""

    code: int
    stdout: str
    stderr: str


def run_cli(*argv: str) -> CliResult:
    """``lm_forget.cli.main(argv)`` in this process, its output captured, the process-wide settings it changes
    (logger levels, warning filters, torch threads) restored afterwards."""
    import torch

    from lm_forget.cli import main

    levels = {name: logging.getLogger(name).level for name in _DEMO_QUIETED}
    threads = torch.get_num_threads()
    out, err = io.StringIO(), io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse usage errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        torch.set_num_threads(threads)
    return CliResult(code, out.getvalue(), err.getvalue())


@dataclass
class DemoStudy:
    """A finished ``lm-forget demo --quick`` study: its folder and what the first run printed."""

    out: Path
    stdout: str

    def plan(self):
        """The study's step plan, read back from the run config the demo wrote."""
        from lm_forget.run.config import load_run_config
        from lm_forget.run.graph import build_plan

        return build_plan(load_run_config(self.out / "run.yaml"))


def build_quick_demo(out: Path, *extra: str) -> DemoStudy:
    """Run ``lm-forget demo --quick --out OUT`` in process (the expensive part of every demo test, once)."""
    done = run_cli("demo", "--quick", "--out", str(out), *extra)
    assert done.code == 0, done.stderr[-3000:]
    return DemoStudy(out, done.stdout)


def copy_study(src: Path, dst: Path) -> Path:
    """Copy a demo study folder; its ``model-*`` and ``tasks-*`` folders become links to the original's, so the
    copy's steps have the original's keys and its finished steps are reused, not rerun."""
    linked = [p for p in src.iterdir() if p.is_dir() and p.name.startswith(("model-", "tasks-"))]
    shutil.copytree(src, dst, ignore=lambda folder, names: [n for n in names
                                                            if Path(folder) == src and src / n in linked])
    for path in linked:
        (dst / path.name).symlink_to(path.resolve(), target_is_directory=True)
    return dst


# three phases in one interpreter: the real lm_eval CLI entry point, called as the console script does
_RUN_PHASES = """
import sys
from lm_eval.__main__ import cli_evaluate
model, out, tasks, limit = sys.argv[1:5]
for name, extra in zip(("pretrained", "finetuned", "forget"), ["", *(",peft=" + a for a in sys.argv[5:7])]):
    sys.argv = ["lm_eval", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32{extra}",
                "--tasks", tasks, "--limit", limit, "--log_samples", "--output_path", f"{out}/{name}",
                "--device", "cpu", "--batch_size", "8"]
    cli_evaluate()
"""
PHASE_TASKS = ["forget_cola", "forget_openbookqa"]
PHASE_LIMIT = 30


def random_adapter(base: Path, path: Path, seed: int) -> Path:
    """A LoRA adapter with random (non-zero) weights on ``base``: it changes the model's answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                           LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"],
                                      init_lora_weights=False))
    model.save_pretrained(path)
    return path


def build_lmeval_phases(root: Path, model: Path, env: dict[str, str]) -> Path:
    """Real ``lm_eval --log_samples`` folders ``root/{pretrained,finetuned,forget}`` of ``model`` and two random
    adapters (``root/adapter_ft``, ``root/adapter_fg``) on PHASE_TASKS, PHASE_LIMIT docs each, in one subprocess."""
    import subprocess
    import sys

    ft = random_adapter(model, root / "adapter_ft", 1)
    fg = random_adapter(model, root / "adapter_fg", 2)
    proc = subprocess.run([sys.executable, "-c", _RUN_PHASES, str(model), str(root), ",".join(PHASE_TASKS),
                           str(PHASE_LIMIT), str(ft), str(fg)], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root
