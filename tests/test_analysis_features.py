"""``extract_features`` on the real tiny model and real mirror data, with and without a LoRA adapter."""

from __future__ import annotations

import json
import math

import pytest

from lm_forget.analysis.api import extract_features
from lm_forget.analysis.features import read_feature_sets
from lm_forget.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def data_env(mirror_dir, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    # one cache for the whole session: every analysis test builds forget_openbookqa / forget_cola once
    mp.setenv("LM_FORGET_CACHE", str(tmp_path_factory.getbasetemp() / "lm_forget_cache"))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def lora_adapter(tiny_model_dir, tmp_path_factory):
    """A real PEFT LoRA adapter with non-zero weights (so it changes the hidden states)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"],
                                            init_lora_weights=False))
    path = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(path)
    return path


@pytest.mark.e2e
def test_features_with_and_without_lora(tiny_model_dir, lora_adapter, data_env, tmp_path):
    common = {"tasks": ["forget_openbookqa"], "out": None, "limit": 24, "batch_size": 7, "device": "cpu"}
    base = extract_features(str(tiny_model_dir), peft=None, **(common | {"out": tmp_path / "base"}),
                            role="pretrained", probes=True, probe_layers=[1, 5])
    tuned = extract_features(str(tiny_model_dir), peft=str(lora_adapter), **(common | {"out": tmp_path / "ft"}),
                             layer="all")
    b = json.loads((base / "features.json").read_text())
    t = json.loads((tuned / "features.json").read_text())
    assert b["role"] == "pretrained" and b["primary_layer"] == 1 and b["layers"] == [1]
    assert t["role"] == lora_adapter.name and t["layers"] == [0, 1, 2, 3, 4, 5] and t["primary_layer"] == 1
    vb = b["tasks"]["forget_openbookqa"]["variance"]["1"]
    vt = t["tasks"]["forget_openbookqa"]["variance"]
    assert b["tasks"]["forget_openbookqa"]["n_docs"] == 24
    assert vb > 0 and all(math.isfinite(v) and v > 0 for v in vt.values())
    assert abs(vt["1"] - vb) / vb > 1e-3  # the adapter changes layer-1 states
    assert [p["layer"] for p in b["probes"]] == [1, 5]
    assert all(0 <= p["probe_doc_acc"] <= 1 and p["n_train_pairs"] == 48 for p in b["probes"])
    assert (base / "probes.csv").is_file()
    sets = read_feature_sets(tmp_path)
    assert sorted(s["role"] for s in sets) == sorted(["pretrained", lora_adapter.name])


@pytest.mark.e2e
def test_embeddings_unchanged_by_attention_lora(tiny_model_dir, lora_adapter, data_env, tmp_path):
    kw = {"tasks": ["forget_openbookqa"], "limit": 12, "layer": 0, "device": "cpu"}
    a = extract_features(str(tiny_model_dir), peft=None, out=tmp_path / "a", **kw)
    b = extract_features(str(tiny_model_dir), peft=str(lora_adapter), out=tmp_path / "b", **kw)
    va = json.loads((a / "features.json").read_text())["tasks"]["forget_openbookqa"]["variance"]["0"]
    vb = json.loads((b / "features.json").read_text())["tasks"]["forget_openbookqa"]["variance"]["0"]
    assert va == pytest.approx(vb, rel=1e-9)


def test_feature_errors(tiny_model_dir, data_env, tmp_path):
    with pytest.raises(DataError, match="no features.json"):
        read_feature_sets(tmp_path)
    bad = tmp_path / "bad" / "features.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(DataError, match=str(bad)):
        read_feature_sets(tmp_path)
    with pytest.raises(ConfigError, match="out of range"):
        extract_features(str(tiny_model_dir), peft=None, tasks=["forget_openbookqa"], layer=9,
                         out=tmp_path / "x", device="cpu")
    with pytest.raises(ConfigError, match="adapter_config.json"):
        extract_features(str(tiny_model_dir), peft=str(tmp_path), tasks=["forget_openbookqa"],
                         out=tmp_path / "y", device="cpu")


@pytest.mark.e2e
def test_features_cli(tiny_model_dir, data_env, tmp_path, capsys):
    from lm_forget.cli import main

    code = main(["features", "--model", str(tiny_model_dir), "--tasks", "forget_openbookqa", "--layer=-1,0",
                 "--limit", "8", "--batch-size", "3", "--padding-side", "left", "--device", "cpu",
                 "--out", str(tmp_path / "f")])
    assert code == 0 and "features written" in capsys.readouterr().out
    record = json.loads((tmp_path / "f" / "features.json").read_text())
    assert record["layers"] == [0, 5] and record["primary_layer"] == 5
    assert main(["features", "--model", str(tiny_model_dir), "--tasks", "forget_nope", "--device", "cpu",
                 "--out", str(tmp_path / "g")]) == 2
