"""Deduplication on real data: planted duplicates are dropped and counted, by rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_forget.data.api import load_task
from lm_forget.data.normalize import dedup_key, normalize_text

OBQA = Path("allenai/openbookqa/main")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _restyle(row: dict) -> dict:
    """Same question, different surface: case, punctuation, whitespace."""
    copy = json.loads(json.dumps(row))
    copy["question_stem"] = "  " + copy["question_stem"].upper().replace(" ", "   ") + " ?!"
    copy["id"] = copy["id"] + "-restyled"
    return copy


@pytest.fixture()
def obqa_mirror(tmp_path, mirror_dir, monkeypatch):
    root = tmp_path / "mirror"
    train, test = _rows(mirror_dir / OBQA / "train.jsonl"), _rows(mirror_dir / OBQA / "test.jsonl")
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(root))
    return root, train, test


def test_normalize_ignores_case_whitespace_and_punctuation():
    assert normalize_text("  The Sun, is HOT!! ") == normalize_text("the sun is hot")
    assert dedup_key("Q?", ["b", "A"]) == dedup_key("q", ["a", "B."])
    assert dedup_key("Q?", ["a", "b"]) != dedup_key("Q?", ["a", "c"])


def test_planted_cross_split_duplicates_are_dropped_and_counted(obqa_mirror):
    root, train, test = obqa_mirror
    _write(root / OBQA / "train.jsonl", train)
    _write(root / OBQA / "test.jsonl", test)
    baseline = load_task("forget_openbookqa", train_size=100_000, eval_size=100_000)
    base_overlap = baseline.report["splits"]["test"]["dropped"].get("overlaps_train", 0)
    base_ids = {d["source_index"] for d in baseline.splits["test"]}

    # plant 6 exact copies and 4 restyled copies of evaluation docs that survived dedup into train
    survivors = sorted(base_ids)[:10]
    planted = [test[i] for i in survivors[:6]] + [_restyle(test[i]) for i in survivors[6:]]
    _write(root / OBQA / "train.jsonl", train + planted)
    rebuilt = load_task("forget_openbookqa", train_size=100_000, eval_size=100_000)
    dropped = rebuilt.report["splits"]["test"]["dropped"]
    assert dropped.get("overlaps_train", 0) == base_overlap + 10
    left = {d["source_index"] for d in rebuilt.splits["test"]}
    assert not left & set(survivors), "every planted evaluation doc is gone from the evaluation split"
    train_keys = {dedup_key(d["prompt"], d["source_choices"]) for d in rebuilt.splits["train"]}
    for doc in rebuilt.splits["test"]:
        assert dedup_key(doc["prompt"], doc["source_choices"]) not in train_keys


def test_within_split_duplicates_are_dropped_and_counted(obqa_mirror):
    root, train, test = obqa_mirror
    _write(root / OBQA / "train.jsonl", train)
    _write(root / OBQA / "test.jsonl", test)
    base = load_task("forget_openbookqa", train_size=100_000, eval_size=100_000).report["splits"]
    _write(root / OBQA / "train.jsonl", train + [_restyle(r) for r in train[:7]])
    _write(root / OBQA / "test.jsonl", test + [dict(r, id=r["id"] + "-copy") for r in test[-3:]])
    report = load_task("forget_openbookqa", train_size=100_000, eval_size=100_000).report["splits"]
    assert report["train"]["dropped"].get("duplicate_in_split", 0) == base["train"]["dropped"].get(
        "duplicate_in_split", 0) + 7
    assert report["test"]["dropped"].get("duplicate_in_split", 0) == base["test"]["dropped"].get(
        "duplicate_in_split", 0) + 3
    assert report["train"]["available"] == base["train"]["available"]
