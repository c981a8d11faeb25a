"""Faults: kills (real SIGKILL at controlled moments), full disks and damaged inputs lose nothing, and nothing
half-done is reported as done. Real stories260K model, real data; each fault asserts its message, its exit
code and that nothing was lost (docs/reliability.md, "Faults", lists them).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_CONFIG = REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml"
MAX_STEPS = 6  # checkpoints at 2, 4 and 6

# A real `lm-forget train` process that kills itself (SIGKILL: no cleanup, no finally) at the moment
# FAULT names, by wrapping the library function that is running at that moment.
_TRAIN_DRIVER = r"""
import os, signal, sys
kind, _, arg = os.environ["FAULT"].partition(":")

def kill():
    os.kill(os.getpid(), signal.SIGKILL)

from transformers import Trainer
if kind == "kill_in_save":  # checkpoint-N: weights written, optimizer/RNG state and trainer_state.json not yet
    original = Trainer._save_optimizer_and_scheduler
    def patched(self, output_dir):
        if output_dir.endswith("checkpoint-" + arg):
            kill()
        return original(self, output_dir)
    Trainer._save_optimizer_and_scheduler = patched
elif kind == "kill_mid_weights":  # checkpoint-N: the adapter file is half written
    import peft.peft_model as peft_model
    original = peft_model.safe_save_file
    def patched(tensors, filename, *args, **kwargs):
        original(tensors, filename, *args, **kwargs)
        if "checkpoint-" + arg in str(filename):
            with open(filename, "r+b") as fh:
                fh.truncate(os.path.getsize(filename) // 2)
            kill()
    peft_model.safe_save_file = patched
elif kind == "kill_after_save":  # checkpoint-N complete, training goes on
    original = Trainer._save_checkpoint
    def patched(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.state.global_step == int(arg):
            kill()
    Trainer._save_checkpoint = patched
elif kind == "kill_in_card":  # training done, adapter saved, our model card half written
    import lm_forget.hub.card as card
    original = card.render_card
    class HalfWritten:
        def __init__(self, rendered):
            self.text = str(rendered)
        def save(self, filepath):
            with open(filepath, "w") as fh:
                fh.write(self.text[:100])
            kill()
    card.render_card = lambda *args, **kwargs: HalfWritten(original(*args, **kwargs))

from lm_forget.cli import main
sys.exit(main(["train", *sys.argv[1:]]))
"""


def _argv(model: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", str(TRAIN_CONFIG), "--model", str(model), "--output_dir", str(out), "--tasks", "forget_cola",
            "--num_examples", "24", "--per_device_train_batch_size", "4", "--max_steps", str(MAX_STEPS),
            "--save_steps", "2", "--save_total_limit", "3", "--logging_steps", "1", "--disable_tqdm", "true",
            *extra]


def _killed_train(fault: str, model: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FAULT": fault, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", _TRAIN_DRIVER, *_argv(model, out, *extra)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"not killed ({proc.returncode}): {proc.stderr[-3000:]}"
    return proc


def _cli(capsys, *argv: str) -> tuple[int, str]:
    from lm_forget.cli import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _resumed_from(caplog) -> str | None:
    """The checkpoint the trainer said it resumed from."""
    found = [Path(r.args[0]).name for r in caplog.records if r.msg == "resuming from %s"]
    return found[-1] if found else None


def _tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def _state(folder: Path) -> dict:
    return json.loads((folder / "forget_config.json").read_text())


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_same_adapter(out: Path, reference: Path) -> None:
    """Same labels, steps and (within a pinned tolerance) weights as the uninterrupted run."""
    import torch

    got, want = _state(out), _state(reference)
    assert got["status"] == "done" and got["global_step"] == want["global_step"] == MAX_STEPS
    assert got["labels_hash"] == want["labels_hash"]
    assert (out / "labels.jsonl").read_bytes() == (reference / "labels.jsonl").read_bytes()
    a, b = _tensors(out), _tensors(reference)
    assert a.keys() == b.keys()
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir, data_env) -> Path:
    """An uninterrupted run: what every interrupted one must end up equal to."""
    from lm_forget.cli import main

    out = tmp_path_factory.mktemp("faults") / "reference"
    assert main(["train", *_argv(tiny_model_dir, out)]) == 0
    return out


# ----------------------------------------------------------------------------------------- training


@pytest.mark.e2e
def test_kill_during_checkpoint_save_resumes_from_the_last_complete_one(reference, tiny_model_dir, tmp_path,
                                                                        capsys, caplog):
    out = tmp_path / "run"
    _killed_train("kill_in_save:4", tiny_model_dir, out)
    assert (out / "checkpoints" / "checkpoint-4" / "adapter_model.safetensors").is_file()
    assert not (out / "checkpoints" / "checkpoint-4" / "trainer_state.json").exists()
    assert _state(out)["status"] == "training" and not (out / "adapter_model.safetensors").exists()

    code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out))
    assert code == 2 and "already holds checkpoints (checkpoint-4)" in text and "--resume" in text
    assert (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()  # nothing deleted

    with caplog.at_level(logging.INFO, logger="lm_forget"):
        code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out, "--resume"))
    assert code == 0, text
    assert "removing incomplete checkpoint" in caplog.text and "checkpoint-4: no readable trainer_state.json" \
        in caplog.text
    assert _resumed_from(caplog) == "checkpoint-2"
    _assert_same_adapter(out, reference)


@pytest.mark.e2e
def test_kill_mid_weights_write_resumes_from_the_checkpoint_before(reference, tiny_model_dir, tmp_path, capsys,
                                                                   caplog):
    out = tmp_path / "run"
    _killed_train("kill_mid_weights:4", tiny_model_dir, out)
    with caplog.at_level(logging.WARNING, logger="lm_forget"):
        code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out, "--resume"))
    assert code == 0, text
    assert "removing incomplete checkpoint" in caplog.text and "checkpoint-4" in caplog.text
    _assert_same_adapter(out, reference)


@pytest.fixture(scope="module")
def killed_after_checkpoint_4(reference, tiny_model_dir, tmp_path_factory) -> Path:
    """A run killed right after checkpoint-4 was completely written."""
    out = tmp_path_factory.mktemp("killed4") / "run"
    _killed_train("kill_after_save:4", tiny_model_dir, out)
    return out


@pytest.mark.e2e
def test_kill_between_steps_resumes_from_the_newest_checkpoint(reference, killed_after_checkpoint_4,
                                                               tiny_model_dir, tmp_path, capsys, caplog):
    out = tmp_path / "run"
    shutil.copytree(killed_after_checkpoint_4, out)
    with caplog.at_level(logging.INFO, logger="lm_forget"):
        code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out, "--resume"))
    assert code == 0, text
    assert "removing incomplete" not in caplog.text
    assert _resumed_from(caplog) == "checkpoint-4"
    assert f"finetune: {MAX_STEPS} steps on 24 examples" in text
    _assert_same_adapter(out, reference)


@pytest.mark.e2e
def test_truncated_checkpoint_weights_are_not_resumed_from(reference, killed_after_checkpoint_4, tiny_model_dir,
                                                           tmp_path, capsys, caplog):
    out = tmp_path / "run"
    shutil.copytree(killed_after_checkpoint_4, out)
    weights = out / "checkpoints" / "checkpoint-4" / "adapter_model.safetensors"
    with weights.open("r+b") as fh:  # its trainer_state.json is fine: only the weights are damaged
        fh.truncate(weights.stat().st_size - 100)
    with caplog.at_level(logging.INFO, logger="lm_forget"):
        code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out, "--resume"))
    assert code == 0, text
    assert "checkpoint-4: adapter_model.safetensors is truncated" in caplog.text
    assert _resumed_from(caplog) == "checkpoint-2"
    _assert_same_adapter(out, reference)


@pytest.fixture(scope="module")
def killed_in_card(reference, tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("killed_card") / "run"
    _killed_train("kill_in_card", tiny_model_dir, out)
    return out


@pytest.mark.e2e
def test_kill_while_writing_the_card_is_not_a_finished_run(reference, killed_in_card, tiny_model_dir, tmp_path,
                                                           capsys):
    out = tmp_path / "run"
    shutil.copytree(killed_in_card, out)
    assert (out / "adapter_model.safetensors").is_file()  # weights saved, card half written ...
    assert _state(out)["status"] == "saving"  # ... and the record does not say done
    code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out))
    assert code == 2 and "already holds checkpoints (checkpoint-6)" in text
    code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out, "--resume"))
    assert code == 0, text
    from huggingface_hub import ModelCard

    assert ModelCard.load(out / "README.md").data.library_name == "peft"
    _assert_same_adapter(out, reference)


@pytest.mark.e2e
def test_an_unfinished_run_is_refused_as_init_adapter(killed_in_card, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "forget"
    code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out, "--stage", "forget", "--init_adapter",
                                              str(killed_in_card)))
    assert code == 2 and "is an unfinished run (status 'saving'" in text and "--resume" in text
    assert not out.exists()


def _disk_full(path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@pytest.mark.e2e
def test_disk_full_during_a_checkpoint_says_so_and_resume_recovers(reference, tiny_model_dir, tmp_path, capsys,
                                                                   monkeypatch):
    from transformers import Trainer

    original = Trainer._save_optimizer_and_scheduler

    def full_disk(self, output_dir):
        if output_dir.endswith("checkpoint-4"):
            raise _disk_full(Path(output_dir) / "optimizer.pt")
        return original(self, output_dir)

    out = tmp_path / "run"
    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", full_disk)
    code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out))
    assert code == 2
    assert "no space left on the device" in text and "checkpoint-4/optimizer.pt" in text
    assert "the last complete checkpoint, checkpoint-2, is kept" in text and "--resume" in text
    assert _state(out)["status"] == "training"
    monkeypatch.undo()
    code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out, "--resume"))
    assert code == 0, text
    _assert_same_adapter(out, reference)


@pytest.mark.e2e
def test_disk_full_during_the_final_save_says_so_and_resume_recovers(reference, tiny_model_dir, tmp_path, capsys,
                                                                     monkeypatch):
    from transformers import Trainer

    original = Trainer.save_model

    def full_disk(self, output_dir=None, _internal_call=False):
        if "checkpoint-" not in str(output_dir):
            raise _disk_full(Path(output_dir) / "adapter_model.safetensors")
        return original(self, output_dir, _internal_call)

    out = tmp_path / "run"
    monkeypatch.setattr(Trainer, "save_model", full_disk)
    code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out))
    assert code == 2 and "no space left on the device" in text and "checkpoint-6, is kept" in text
    assert _state(out)["status"] == "training"
    monkeypatch.undo()
    code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out, "--resume"))
    assert code == 0, text
    _assert_same_adapter(out, reference)


@pytest.mark.e2e
def test_killed_overwrite_keeps_the_old_run_and_never_mixes(reference, tiny_model_dir, tmp_path, capsys):
    from lm_forget.train.outputs import previous_dir

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    old = _digest(out)
    _killed_train("kill_in_save:4", tiny_model_dir, out, "--overwrite", "--seed", "1")
    kept = previous_dir(out)
    assert _digest(kept) == old  # the old run, byte for byte
    assert _state(out)["status"] == "training"  # the new one is marked unfinished ...
    assert not (out / "adapter_model.safetensors").exists() and not (out / "README.md").exists()  # ... unmixed

    code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out, "--seed", "1"))
    assert code == 2 and f"the finished run it was replacing is kept in {kept}" in text
    code, text = _cli(capsys, "train", *_argv(tiny_model_dir, out, "--overwrite", "--seed", "1"))
    assert code == 0, text
    assert not kept.exists() and _state(out)["status"] == "done" and _state(out)["seed"] == 1


# ----------------------------------------------------------------------------------------- analysis

@pytest.fixture(scope="module")
def phases(lmeval_phases) -> dict[str, Path]:
    """Real `lm_eval --log_samples` folders of the base model and two adapters (conftest.lmeval_phases)."""
    return {name: lmeval_phases / name for name in ("pretrained", "finetuned", "forget")}


def _analyze_argv(phases: dict[str, Path], out: Path) -> list[str]:
    return ["analyze", *(x for name, path in phases.items() for x in (f"--{name}", str(path))), "--out", str(out),
            "--n-bootstrap", "50", "--n-permutations", "50", "--formats", "png"]


@pytest.fixture(scope="module")
def report(phases, tmp_path_factory) -> Path:
    from lm_forget.cli import main

    out = tmp_path_factory.mktemp("report") / "report"
    assert main(_analyze_argv(phases, out)) == 0
    return out


_KILLED_ANALYZE = r"""
import os, signal, sys
from lm_forget.analysis import writer
def half_written(rendered, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "index.md").write_text(rendered.markdown()[:200])
    os.kill(os.getpid(), signal.SIGKILL)
writer.save_rendered = half_written
from lm_forget.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.e2e
@pytest.mark.xdist_group("lmeval_phases")
def test_killed_analyze_leaves_the_previous_report_whole(phases, report, tmp_path, capsys):
    out = tmp_path / "report"
    shutil.copytree(report, out)
    before = _digest(out)
    proc = subprocess.run([sys.executable, "-c", _KILLED_ANALYZE, *_analyze_argv(phases, out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert _digest(out) == before  # the old report, whole; the half one is only in a .tmp- folder
    assert list(tmp_path.glob(".tmp-report-*"))
    code, text = _cli(capsys, *_analyze_argv(phases, out))
    assert code == 0 and "report:" in text
    assert not list(tmp_path.glob(".tmp-report-*")) and (out / "index.html").is_file()


_KILLED_SWAP = r"""
import os, signal, sys
from pathlib import Path
from lm_forget import io as fileio
calls = []
real = os.replace
def replace(src, dst):
    real(src, dst)
    calls.append(dst)
    if len(calls) == 1:  # the old report is aside, the new one not yet in place
        os.kill(os.getpid(), signal.SIGKILL)
fileio.os.replace = replace
new = Path(sys.argv[2]); new.mkdir(); (new / "index.md").write_text("new")
fileio.replace_dir(new, Path(sys.argv[1]))
"""


@pytest.mark.e2e
@pytest.mark.xdist_group("lmeval_phases")
def test_kill_between_the_two_renames_restores_the_old_report(phases, report, tmp_path, capsys, caplog):
    out = tmp_path / "report"
    shutil.copytree(report, out)
    before = _digest(out)
    proc = subprocess.run([sys.executable, "-c", _KILLED_SWAP, str(out), str(tmp_path / "new")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert not out.exists() and _digest(tmp_path / ".old-report") == before
    with caplog.at_level(logging.WARNING, logger="lm_forget"):
        code, text = _cli(capsys, *_analyze_argv(phases, tmp_path / "elsewhere"), "--out", str(out))
    assert code == 0, text
    assert f"restored {out}" in caplog.text
    assert not (tmp_path / ".old-report").exists() and (out / "index.md").is_file()


@pytest.mark.e2e
@pytest.mark.xdist_group("lmeval_phases")
def test_analyze_never_replaces_a_folder_that_is_not_a_report(phases, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, text = _cli(capsys, *_analyze_argv(phases, out))
    assert code == 2 and "is not an lm-forget report folder" in text and "nothing was written" in text
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"


@pytest.mark.e2e
@pytest.mark.xdist_group("lmeval_phases")
def test_disk_full_during_analyze_says_so_and_keeps_the_previous_report(phases, report, tmp_path, capsys,
                                                                        monkeypatch):
    from lm_forget.analysis import writer

    out = tmp_path / "report"
    shutil.copytree(report, out)
    before = _digest(out)

    def full_disk(rendered, out_dir):
        raise _disk_full(out_dir / "index.html")

    monkeypatch.setattr(writer, "save_rendered", full_disk)
    code, text = _cli(capsys, *_analyze_argv(phases, out))
    assert code == 2 and "no space left on the device" in text and "the previous report is kept" in text
    assert _digest(out) == before and not list(tmp_path.glob(".tmp-*"))


@pytest.mark.e2e
@pytest.mark.xdist_group("lmeval_phases")
def test_a_phase_folder_with_two_models_is_an_error_naming_both(phases, tmp_path, capsys):
    mixed = tmp_path / "pretrained"
    shutil.copytree(phases["pretrained"], mixed)
    (model_dir,) = [p.parent for p in mixed.rglob("results_*.json")]
    for path in phases["finetuned"].rglob("*_*.json*"):  # the fine-tuned model's files, under later stamps
        target = model_dir / path.name.replace("_20", "_29", 1)
        shutil.copyfile(path, target)
    code, text = _cli(capsys, *_analyze_argv({**phases, "pretrained": mixed}, tmp_path / "out"))
    assert code == 2 and re.search(r"two different models for task forget_(cola|openbookqa)", text)
    assert "peft=" in text and text.count("pretrained=") >= 2  # both models' model_args are named
    assert not (tmp_path / "out").exists()


def test_a_forget_phase_may_hold_one_full_model_per_task():
    """The runner's forget phase: each task scored after forgetting it, with full fine-tuning each forget model
    is its own ``pretrained=`` folder. Only two models for the *same* task are an error."""
    from lm_forget.analysis.samples import check_one_model
    from lm_forget.errors import DataError

    def results(model: str, task: str) -> dict:
        return {"config": {"model_args": f"pretrained={model}"}, "configs": {task: {}}}

    per_task = {Path("results_a.json"): results("/run/forget/a", "forget_a"),
                Path("results_b.json"): results("/run/forget/b", "forget_b")}
    check_one_model(per_task, Path("forget"))
    same_task = {**per_task, Path("results_c.json"): results("/run/forget/c", "forget_a")}
    with pytest.raises(DataError, match="two different models for task forget_a"):
        check_one_model(same_task, Path("forget"))


# ----------------------------------------------------------------------------------------- data cache


def _cache_file(task: str, split: str) -> Path:
    from lm_forget.paths import cache_root

    (path,) = (cache_root() / "tasks" / task).glob(f"*/{split}.jsonl")
    return path


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch, mirror_dir):
    monkeypatch.setenv("LM_FORGET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    from lm_forget.data.api import load_docs

    return load_docs("forget_cola", "train", train_size=200, eval_size=100)


@pytest.mark.parametrize("damage", ["truncated", "edited_row"])
def test_a_damaged_cache_entry_is_rebuilt_with_a_warning(fresh_cache, damage, caplog):
    from lm_forget.data.api import load_docs

    path = _cache_file("forget_cola", "train")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if damage == "truncated":
        path.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
    else:
        row = json.loads(lines[3])
        row["label"] = 1 - row["label"]
        lines[3] = json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n"
        path.write_text("".join(lines), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="lm_forget"):
        docs = load_docs("forget_cola", "train", train_size=200, eval_size=100)
    assert "cached docs of forget_cola" in caplog.text and "are damaged" in caplog.text and "rebuilding" in caplog.text
    assert ("rows, the entry recorded" if damage == "truncated" else "SHA-256") in caplog.text
    assert docs == fresh_cache and len(docs) == 200  # nothing lost: the full, original docs
    caplog.clear()
    assert load_docs("forget_cola", "train", train_size=200, eval_size=100) == fresh_cache
    assert "damaged" not in caplog.text  # the rebuilt entry is whole again
