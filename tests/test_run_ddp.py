"""A study's training step under the shipped 2-process CPU launcher (``launcher: [cpu_ddp]``, gloo DDP through
``accelerate launch``) equals the same step in one process with the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from lm_forget.demo.study import demo_settings, prepare, run_config
from lm_forget.run.launchers import launcher_names, resolve_launcher

pytestmark = pytest.mark.e2e

# one global batch of 16 docs: 16 in one process, or 8 in each of two
STEPS, GLOBAL_BATCH = 4, 16
# float32 sums over two shards vs one differ in rounding only; a wrong batch split or lost gradient averaging
# moves weights by ~1e-3 and more (measured with LoRA: 1e-5 against a 4-vs-8 batch mix-up's 4e-3); the 4 steps
# move the full weights by ~7.5e-3 (measured in CI), so "moved" is checked at 10x the tolerance
ATOL = 2e-4
# each run takes 10-60 s on 2 cores (up to ~3 min on a loaded machine); a hung rank never ends
HANG_TIMEOUT = 420


def _config(tmp_path: Path, shared: dict, settings, name: str, launcher: list[str], batch: int) -> Path:
    run_dir = tmp_path / name
    data = run_config(run_dir, settings, shared)
    data["stages"] = ["finetune"]
    data["finetune"].update(per_device_train_batch_size=batch, max_steps=STEPS, launcher=launcher)
    data["finetune"].update(save_steps=100, warmup_steps=0)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(config: Path) -> Path:
    # a hang at the end of a distributed run (one rank left in a collective) fails here instead of blocking CI
    proc = subprocess.run([sys.executable, "-m", "lm_forget", "run", str(config)], capture_output=True, text=True,
                          timeout=HANG_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    run_dir = Path(yaml.safe_load(config.read_text())["run_dir"])
    (done,) = run_dir.glob("finetune/*/done.json")
    return done.parent


def test_shipped_launchers_resolve_to_accelerate_configs():
    assert {"ddp", "cpu_ddp", "fsdp2", "zero3", "zero3_offload"} <= set(launcher_names())
    command = resolve_launcher(["zero3", "--num_processes", "4"])
    assert command[:3] == ["accelerate", "launch", "--config_file"]
    assert Path(command[3]).name == "zero3.yaml" and Path(command[3]).is_file()
    assert command[4:] == ["--num_processes", "4"]
    assert resolve_launcher(["torchrun", "--nproc_per_node", "2"]) == ["torchrun", "--nproc_per_node", "2"]
    for name in launcher_names():
        config = yaml.safe_load(Path(resolve_launcher([name])[3]).read_text())
        assert config["compute_environment"] == "LOCAL_MACHINE" and config["num_processes"] >= 1


def test_two_process_ddp_step_equals_one_process(tmp_path):
    # training only, at the first quick demo's small sizes (these tests time steps, not effects)
    settings = demo_settings(quick=True, dynamics_points=0, relearn_k=[], train_size=64, eval_size=32,
                             num_examples=64)
    shared = prepare(tmp_path / "shared", settings)
    one = _run(_config(tmp_path, shared, settings, "one", [], GLOBAL_BATCH))
    two = _run(_config(tmp_path, shared, settings, "two", ["cpu_ddp"], GLOBAL_BATCH // 2))

    record_two = json.loads((two / "done.json").read_text())
    assert record_two["launcher"].startswith("accelerate launch --config_file")
    state_one = json.loads((one / "output" / "forget_config.json").read_text())
    state_two = json.loads((two / "output" / "forget_config.json").read_text())
    assert state_one["global_step"] == state_two["global_step"] == STEPS
    assert state_one["labels_hash"] == state_two["labels_hash"]
    assert (one / "output" / "labels.jsonl").read_bytes() == (two / "output" / "labels.jsonl").read_bytes()

    base = load_file(str(shared["model"] / "model.safetensors"))
    w_one = load_file(str(one / "output" / "model.safetensors"))
    w_two = load_file(str(two / "output" / "model.safetensors"))
    assert set(w_one) == set(w_two)
    moved = max((w_one[k].float() - base[k].float()).abs().max().item() for k in w_one if k in base)
    diff = max((w_one[k].float() - w_two[k].float()).abs().max().item() for k in w_one)
    print(f"weights moved by up to {moved:.3g}; 1 vs 2 processes differ by up to {diff:.3g}")
    assert moved > 10 * ATOL, f"training barely moved the weights ({moved}): the comparison would prove nothing"
    assert diff < ATOL, f"2-process DDP differs from 1 process by {diff} (tolerance {ATOL}; moved {moved})"
