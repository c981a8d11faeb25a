"""Data that used to be silently wrong: each case is now refused (one line, exit 2) or handled correctly.

- a fractional label (``0.5``) in a mirror was truncated to 0 and kept: refused, naming the file and row;
- invisible characters (U+200B, U+00AD, U+2060: Unicode category Cf) inside a word defeated the train/test
  overlap check, so test questions leaked into the forget pool: they are ignored by the normalization;
- ``--tasks forget_cola,forget_cola`` trained every doc twice: refused;
- a mirror edited in place with its size and mtime kept (``cp -p``, ``rsync -a``) kept serving stale docs:
  the cache is keyed on the file's content.

All on copies of the real CoLA mirror (../shared).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from lm_forget.cli import main
from lm_forget.data.api import load_task

REPO_ROOT = Path(__file__).resolve().parents[1]
COLA = Path("nyu-mll") / "glue" / "cola"


@pytest.fixture
def mirror(tmp_path, mirror_dir, monkeypatch):
    """A private copy of the real CoLA mirror, and a private docs cache."""
    root = tmp_path / "hf"
    shutil.copytree(mirror_dir / COLA, root / COLA)
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(root))
    monkeypatch.setenv("LM_FORGET_CACHE", str(tmp_path / "cache"))
    return root


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_fractional_label_is_refused_with_file_and_row(mirror, tmp_path, capsys):
    train = mirror / COLA / "train.jsonl"
    rows = _rows(train)
    rows[5]["label"] = 0.5
    _write(train, rows)
    code = main(["tasks", "show", "forget_cola"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err, err
    err = err.splitlines()[-1]  # after the progress bars: the one error line
    assert err.startswith("lm-forget tasks: error: "), err
    assert f"{train}: row 6" in err and "label 0.5 is not a whole number" in err
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] if (tmp_path / "cache").exists() else []
    assert not [p for p in cached if p.suffix != ".lock"]  # nothing half-built was cached


@pytest.mark.parametrize("mark", ["\u200b", "\u00ad", "\u2060"])
def test_invisible_characters_do_not_defeat_the_overlap_check(mirror, mark):
    train, validation = mirror / COLA / "train.jsonl", mirror / COLA / "validation.jsonl"
    clean = load_task("forget_cola").report["splits"]["test"]["dropped"].get("overlaps_train", 0)
    known = {r["sentence"] for r in _rows(train)}
    leaked = [r for r in _rows(validation) if r["sentence"] not in known and len(r["sentence"].split()[0]) > 2][:4]
    copies = []
    for r in leaked:  # the same test question, an invisible character inside its first word
        first, rest = r["sentence"].split(" ", 1)
        copies.append({**r, "sentence": f"{first[:2]}{mark}{first[2:]} {rest}", "idx": 100_000 + r["idx"]})
    _write(train, _rows(train) + copies)
    built = load_task("forget_cola")
    assert built.report["splits"]["test"]["dropped"]["overlaps_train"] == clean + len(leaked)
    test_prompts = "\n".join(d["prompt"] for d in built.splits["test"])
    assert not [r for r in leaked if r["sentence"] in test_prompts]


def test_duplicated_tasks_are_refused(tmp_path, capsys, tiny_model_dir, mirror_dir, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    out = tmp_path / "out"
    code = main(["train", "--config", str(REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml"), "--model",
                 str(tiny_model_dir), "--tasks", "forget_cola,forget_cola", "--num_examples", "8",
                 "--output_dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "--tasks lists forget_cola more than once" in err
    code = main(["features", "--model", str(tiny_model_dir), "--tasks", "forget_cola, forget_cola", "--out",
                 str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--tasks lists forget_cola more than once" in err
    assert not out.exists()


def test_cache_is_keyed_on_content_not_size_and_mtime(mirror):
    train = mirror / COLA / "train.jsonl"
    before = load_task("forget_cola").splits["train"]
    stat = train.stat()
    flipped = [{**r, "label": 1 - r["label"]} for r in _rows(train)]  # same size: one digit per row
    _write(train, flipped)
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as cp -p / rsync -a / a tar restore leave it
    assert (train.stat().st_size, train.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    after = load_task("forget_cola").splits["train"]
    assert after != before  # the edited rows, not the stale cache...
    assert after == load_task("forget_cola", refresh=True).splits["train"]  # ...exactly what a rebuild gives


def test_an_empty_text_field_is_dropped_and_counted(mirror):
    validation = mirror / COLA / "validation.jsonl"
    clean = load_task("forget_cola").report["splits"]["test"]
    rows = _rows(validation)
    for i in (3, 7):
        rows[i]["sentence"] = " " if i == 3 else ""
    _write(validation, rows)
    built = load_task("forget_cola")
    test = built.report["splits"]["test"]
    assert test["dropped"]["empty_text"] == 2
    assert test["available"] == clean["available"] - 2  # dropped, not kept as questions that ask nothing
    assert not [d for d in built.splits["test"] if d["prompt"].startswith("\n")]
