"""``lm-forget tasks push``: the suite as a Hub dataset (parquet, one config per task) that loads back with
``datasets`` equal to ``load_docs``. Real data (../shared mirrors), real huggingface_hub client, loopback Hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_server import serve

TOKEN = "hf_lmforgetDATAtoken0123456789secret"
TASKS = ["forget_cola", "forget_openbookqa"]  # sources with complete mirrors in ../shared


@pytest.fixture()
def hub(monkeypatch, tmp_path, mirror_dir):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    server = serve(monkeypatch, tmp_path, {TOKEN: "alice"}, TOKEN)
    yield server
    server.stop()


def test_suite_dataset_round_trip(hub, tmp_path, capsys):
    import datasets
    from huggingface_hub import DatasetCard, snapshot_download

    from lm_forget.cli import main
    from lm_forget.data.api import load_docs

    assert main(["tasks", "push", "alice/lm-forget-suite", *TASKS, "--private"]) == 0
    assert "datasets.load_dataset('alice/lm-forget-suite', 'forget_cola')" in capsys.readouterr().out
    repo = hub.state.datasets["alice/lm-forget-suite"]
    assert repo.private and len(repo.commits) == 2  # one commit for the whole suite
    assert "alice/lm-forget-suite" not in hub.state.repos  # a dataset repo, not a model

    local = Path(snapshot_download("alice/lm-forget-suite", repo_type="dataset", cache_dir=str(tmp_path / "c")))
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*.parquet")) == [
        f"{task}/{split}-00000-of-00001.parquet" for task in TASKS for split in ("test", "train")]
    for task in TASKS:
        for split in ("train", "test"):
            loaded = datasets.load_dataset("parquet", data_files=str(local / task / f"{split}-00000-of-00001.parquet"),
                                           split="train", cache_dir=str(tmp_path / "ds"))
            assert loaded.to_list() == load_docs(task, split), (task, split)  # every field, every doc, in order

    # the card declares the configs, so load_dataset(REPO_ID, task) resolves them
    card = DatasetCard.load(local / "README.md")
    configs = {c["config_name"]: c["data_files"] for c in card.data.configs}
    assert configs["forget_cola"] == [{"split": "train", "path": "forget_cola/train-00000-of-00001.parquet"},
                                      {"split": "test", "path": "forget_cola/test-00000-of-00001.parquet"}]
    assert card.data.license == "other" and "multiple-choice" in card.data.task_categories
    by_config = datasets.load_dataset("alice/lm-forget-suite", "forget_cola", cache_dir=str(tmp_path / "ds2"))
    assert by_config["test"].to_list() == load_docs("forget_cola", "test")  # straight from the (test) Hub
    assert by_config["train"].to_list() == load_docs("forget_cola", "train")
    text = card.text
    assert "| `forget_cola` | `cola` | [`nyu-mll/glue`](https://huggingface.co/datasets/nyu-mll/glue) (cola)" in text
    assert "duplicate_in_split" in text and "zhang2024unforgettable" in text and "license" in text.lower()


def test_suite_push_without_token_writes_nothing(hub, monkeypatch, capsys):
    from lm_forget.cli import main

    monkeypatch.delenv("HF_TOKEN")
    assert main(["tasks", "push", "alice/suite", "forget_cola"]) != 0
    assert "no Hugging Face token" in capsys.readouterr().err
    assert not hub.state.datasets and not hub.state.requests
