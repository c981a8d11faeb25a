"""GGUF bases without loading a model: ModelRef / config threading, metadata -> Hub id, refusals, the card.

The model itself (SmolLM2's real GGUF file) is exercised in tests/test_real_model.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_forget.errors import ConfigError
from lm_forget.modeling import ModelRef, load_model


def _gguf(path: Path, **strings: str) -> Path:
    """A real (tensor-less) GGUF file with the given ``general.*`` strings, written by the ``gguf`` package."""
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(path), "llama")
    for key, value in strings.items():
        writer.add_string(f"general.{key.replace('__', '.')}", value)
    writer.add_uint32("general.file_type", int(gguf.LlamaFileType.MOSTLY_Q4_1))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_model_args_and_forget_config_carry_gguf_file():
    ref = ModelRef("/models/smol", gguf_file="smol.Q4_1.gguf")
    assert ref.model_args() == "pretrained=/models/smol,gguf_file=smol.Q4_1.gguf"
    assert ref.with_adapter("/runs/a").model_args() == "pretrained=/models/smol,peft=/runs/a,gguf_file=smol.Q4_1.gguf"
    assert "gguf_file" not in ModelRef("/models/smol").model_args()
    from lm_forget.train.config import ForgetConfig

    config = ForgetConfig(model="/models/smol", gguf_file="smol.Q4_1.gguf", tasks=["forget_cola"], use_cpu=True)
    assert ModelRef.from_forget_config(config).gguf_file == "smol.Q4_1.gguf"
    with pytest.raises(ConfigError, match="gguf_file.*dequantized.*load_in_4bit"):
        ForgetConfig(model="/models/smol", gguf_file="smol.gguf", tasks=["forget_cola"], load_in_4bit=True)


def test_run_config_threads_gguf_file_and_keeps_other_step_keys(tmp_path):
    from lm_forget.run.config import run_config_from_dict
    from lm_forget.run.graph import _model_settings
    from lm_forget.run.training import forget_config_kwargs

    data = {"run_dir": str(tmp_path / "run"), "model": {"name_or_path": "some/model"},
            "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola"], "eval": ["forget_cola"]},
            "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget"]}
    plain = run_config_from_dict(data)
    gguf = run_config_from_dict({**data, "model": {"name_or_path": "some/model", "gguf_file": "m.Q4_1.gguf"}})
    assert "gguf_file" not in _model_settings(plain)  # unchanged step keys for safetensors studies
    assert _model_settings(gguf)["gguf_file"] == "m.Q4_1.gguf"
    kwargs = forget_config_kwargs(gguf, gguf.finetune, stage="finetune", tasks=["forget_cola"], num_examples=8,
                                  seed=0, init=None, output_dir=tmp_path / "ft", resume=False)
    assert kwargs["gguf_file"] == "m.Q4_1.gguf"
    with pytest.raises(ConfigError, match="vllm.*GGUF|GGUF.*vllm"):
        from lm_forget.run.checks import _check_eval

        _check_eval(run_config_from_dict({**data, "model": {"name_or_path": "some/model", "gguf_file": "m.gguf"},
                                          "eval": {"backend": "vllm"}}))
    with pytest.raises(ConfigError, match="gguf_file"):
        run_config_from_dict({**data, "finetune": {"gguf_file": "x.gguf"}})  # the runner owns it: model.gguf_file


def test_bad_gguf_sources_are_refused_with_the_fix(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "other.Q8_0.gguf").write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match=r"--model .*m --gguf_file other.Q8_0.gguf"):
        load_model(ModelRef(str(folder / "other.Q8_0.gguf")))
    with pytest.raises(ConfigError, match="not in .*GGUF files there: other.Q8_0.gguf"):
        load_model(ModelRef(str(folder), gguf_file="missing.gguf"))


def test_metadata_names_the_hub_id_only_when_recorded(tmp_path):
    from lm_forget.hub.base_model import hub_base_model, require_hub_base_model
    from lm_forget.hub.gguf_source import read_gguf_source

    folder = tmp_path / "m"
    folder.mkdir()
    _gguf(folder / "a.gguf", name="Tiny 1M", organization="Org",
          source__url="https://huggingface.co/Org/Tiny-1M/tree/main")
    _gguf(folder / "b.gguf", name="Smollm2 135M 8k", organization="HuggingFaceTB")
    source = read_gguf_source(folder / "a.gguf")
    assert (source.hub_id, source.name, source.quantization) == ("Org/Tiny-1M", "Tiny 1M", "Q4_1")
    assert source.file == "a.gguf"
    assert hub_base_model(str(folder), None, "a.gguf") == "Org/Tiny-1M"
    assert hub_base_model(str(folder), "me/override", "a.gguf") == "me/override"
    assert hub_base_model(str(folder), None, "b.gguf") is None  # a name is never turned into an id
    assert hub_base_model("Org/Tiny-1M-GGUF", None, "x.gguf") == "Org/Tiny-1M-GGUF"  # a Hub repo of GGUF files
    with pytest.raises(ConfigError, match="records no Hub id.*'Smollm2 135M 8k'.*--base-model-id"):
        require_hub_base_model(str(folder), None, "b.gguf")


def test_card_says_dequantized_gguf_and_never_the_path(tmp_path):
    from lm_forget.hub.card import render_card

    run = tmp_path / "forget"
    run.mkdir()
    (run / "adapter_config.json").write_text("{}")
    (run / "forget_config.json").write_text(json.dumps({
        "stage": "forget", "method": "random_labels", "model": "/private/models/smol", "gguf_file": "smol.Q4_1.gguf",
        "gguf": {"file": "smol.Q4_1.gguf", "hub_id": None, "name": "Smol", "quantization": "Q4_1"},
        "tasks": ["forget_sst2"], "seed": 0, "data": {"seed": 0}, "num_examples": 16, "use_lora": True,
        "examples_per_task": {"forget_sst2": 16}, "labels_hash": "ab" * 32, "settings": {}, "versions": {}}))
    card = render_card(run, repo_id="me/smol-forget", base_model_id="Org/Smol")
    assert card.data.base_model == "Org/Smol"
    assert "dequantized GGUF" in card.text and "`smol.Q4_1.gguf`" in card.text and "(Q4_1)" in card.text
    assert "gguf_file=smol.Q4_1.gguf,peft=me/smol-forget" in card.text
    assert "/private/models" not in str(card)
    bare = render_card(run, repo_id="me/smol-forget")  # no Hub id anywhere: the file's name, not its folder
    assert bare.data.base_model is None and "/private/models" not in str(bare)
