"""Determinism: byte-identical docs across processes and PYTHONHASHSEED; the cache is keyed correctly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from lm_forget.data.api import load_task


def _build_in_subprocess(cache: Path, hash_seed: str, mirror: Path) -> dict[str, bytes]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "LM_FORGET_CACHE": str(cache),
           "LM_FORGET_DATA_DIR": str(mirror)}
    subprocess.run([sys.executable, "-m", "lm_forget", "tasks", "build", "forget_openbookqa", "forget_cola",
                    "--train-size", "300", "--eval-size", "200"], check=True, env=env, capture_output=True)
    files = sorted(cache.rglob("*.jsonl"))
    assert len(files) == 4
    return {str(f.relative_to(cache)): f.read_bytes() for f in files}


def test_builds_are_byte_identical_across_processes_and_hash_seeds(tmp_path, mirror_dir):
    first = _build_in_subprocess(tmp_path / "a", "1", mirror_dir)
    second = _build_in_subprocess(tmp_path / "b", "98765", mirror_dir)
    assert first == second


def test_data_seed_changes_distractors_but_not_gold(mirror_dir, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    a = {d["id"]: d for d in load_task("forget_openbookqa", seed=0, train_size=5000).splits["train"]}
    b = {d["id"]: d for d in load_task("forget_openbookqa", seed=1, train_size=5000).splits["train"]}
    assert a.keys() == b.keys()
    assert all(a[k]["source_label"] == b[k]["source_label"] for k in a)
    changed = sum(a[k]["kept"] != b[k]["kept"] for k in a)
    assert changed > len(a) // 3


def test_second_load_comes_from_cache_and_data_changes_invalidate_it(tmp_path, mirror_dir, monkeypatch):
    root = tmp_path / "mirror" / "nyu-mll" / "glue" / "cola"
    root.mkdir(parents=True)
    for split in ("train", "validation"):
        (root / f"{split}.jsonl").write_bytes((mirror_dir / "nyu-mll/glue/cola" / f"{split}.jsonl").read_bytes())
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(tmp_path / "mirror"))
    first = load_task("forget_cola", train_size=50, eval_size=50)
    start = time.perf_counter()
    again = load_task("forget_cola", train_size=50, eval_size=50)
    assert time.perf_counter() - start < 5  # generous: a cache hit never rebuilds
    assert again.report["cache_key"] == first.report["cache_key"] and again.splits == first.splits

    lines = (root / "validation.jsonl").read_text().splitlines(keepends=True)
    (root / "validation.jsonl").write_text("".join(lines[:-10]))
    changed = load_task("forget_cola", train_size=50, eval_size=50)
    assert changed.report["cache_key"] != first.report["cache_key"]
    assert changed.report["splits"]["test"]["source_rows"] == len(lines) - 10


def test_cache_follows_hf_home(tmp_path, monkeypatch):
    """The cache lives under huggingface_hub's own HF_HOME (resolved by the client, at its import)."""
    from huggingface_hub import constants

    from lm_forget.paths import cache_root

    monkeypatch.delenv("LM_FORGET_CACHE", raising=False)
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    assert cache_root() == tmp_path / "hf" / "lm_forget"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HOME", "LM_FORGET_CACHE")}
    for name, value, want in (("HF_HOME", tmp_path / "hf2", tmp_path / "hf2" / "lm_forget"),
                              ("XDG_CACHE_HOME", tmp_path / "xdg", tmp_path / "xdg" / "huggingface" / "lm_forget")):
        out = subprocess.run([sys.executable, "-c", "from lm_forget.paths import cache_root; print(cache_root())"],
                             env={**env, name: str(value)}, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == str(want)
