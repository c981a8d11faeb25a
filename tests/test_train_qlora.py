"""LoRA variants and QLoRA through TRL's ModelConfig: same adapter at the defaults, variants reach PEFT, refusals.

A 4-bit base needs CUDA for ``lm-forget train`` (refused elsewhere); what a CPU can check is checked here: the
``LoraConfig`` / ``BitsAndBytesConfig`` TRL builds from our fields, the variants on a real PEFT model and a real
training run on stories260K, every refusal, and the step keys. With bitsandbytes installed, the quantized base
itself is loaded and trained on CPU too (bitsandbytes >= 0.46 has CPU 4-bit kernels); ``bench/gpu_check.py
--only-qlora`` runs the whole QLoRA forget on a GPU.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
from pathlib import Path

import pytest

from lm_forget.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


def _config(tiny_model_dir: Path, tmp_path: Path, **fields):
    from lm_forget.train.config import ForgetConfig

    return ForgetConfig(model=str(tiny_model_dir), tasks=["forget_cola"], output_dir=str(tmp_path / "out"),
                        use_cpu=True, **fields)


@pytest.fixture(scope="module")
def base_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))


def _hand_built(target_modules):
    """The LoraConfig lm-forget built by hand before it went through TRL (api._lora_config, 0.1)."""
    from peft import LoraConfig

    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=target_modules, bias="none",
                      task_type="CAUSAL_LM")


@pytest.mark.parametrize("targets", [["all-linear"], ["q_proj"], ["q_proj", "v_proj"], ["q_proj,v_proj"]])
def test_defaults_give_exactly_the_previous_lora_config(tiny_model_dir, tmp_path, base_model, targets):
    from lm_forget.train.peft_setup import lora_config

    built = lora_config(_config(tiny_model_dir, tmp_path, lora_target_modules=targets), base_model)
    names = [t for item in targets for t in item.split(",")]
    assert built == _hand_built("all-linear" if names == ["all-linear"] else names)
    if names != ["all-linear"]:  # a list stays a list (a set in PEFT), never a one-name regex string
        assert built.target_modules == set(names)


def test_one_target_name_adapts_that_module_in_every_layer(tiny_model_dir, tmp_path, tiny_model_copy):
    from peft import get_peft_model

    from lm_forget.train.peft_setup import lora_config

    model = tiny_model_copy()
    peft_model = get_peft_model(model, lora_config(_config(tiny_model_dir, tmp_path, lora_target_modules=["q_proj"]),
                                                   model))
    adapted = {n.split(".lora_A")[0] for n, _ in peft_model.named_parameters() if ".lora_A." in n}
    layers = model.config.num_hidden_layers
    assert len(adapted) == layers and all(n.endswith("self_attn.q_proj") for n in adapted)


@pytest.fixture
def tiny_model_copy(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return lambda: AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))


def test_rslora_dora_and_modules_to_save_reach_the_peft_model(tiny_model_dir, tmp_path, tiny_model_copy):
    from peft import get_peft_model

    from lm_forget.train.peft_setup import lora_config

    config = _config(tiny_model_dir, tmp_path, use_rslora=True, use_dora=True, lora_modules_to_save=["lm_head"],
                     lora_r=4, lora_alpha=8)
    model = tiny_model_copy()
    peft_model = get_peft_model(model, lora_config(config, model))
    peft_config = peft_model.peft_config["default"]
    assert peft_config.use_rslora and peft_config.use_dora and set(peft_config.modules_to_save) == {"lm_head"}
    q_proj = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    assert q_proj.scaling["default"] == pytest.approx(8 / math.sqrt(4))  # rsLoRA: alpha / sqrt(r), not alpha / r
    assert "default" in q_proj.lora_magnitude_vector  # DoRA's learned magnitude
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert any("lm_head.modules_to_save.default" in n for n in trainable)


def test_variants_train_and_are_saved_with_the_adapter(tiny_model_dir, tmp_path, data_env):
    """A real 2-step run on stories260K: the saved adapter_config carries the variants, lm_head is trained."""
    from safetensors.torch import load_file

    from lm_forget.train.api import train
    from lm_forget.train.cli import parse_config

    argv = ["--config", str(REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml"), "--model", str(tiny_model_dir),
            "--output_dir", str(tmp_path / "out"), "--num_examples", "16", "--max_steps", "2",
            "--disable_tqdm", "true", "--use_rslora", "true", "--use_dora", "true",
            "--lora_modules_to_save", "lm_head", "--lora_target_modules", "q_proj,v_proj"]
    result = train(parse_config(argv))
    saved = json.loads((result.output_dir / "adapter_config.json").read_text())
    assert saved["use_rslora"] is True and saved["use_dora"] is True and saved["modules_to_save"] == ["lm_head"]
    assert set(saved["target_modules"]) == {"q_proj", "v_proj"}
    tensors = load_file(str(result.output_dir / "adapter_model.safetensors"))
    assert any("lm_head" in name for name in tensors) and any("lora_magnitude_vector" in n for n in tensors)
    state = json.loads((result.output_dir / "forget_config.json").read_text())
    assert state["settings"]["use_dora"] is True and state["status"] == "done"
    card = (result.output_dir / "README.md").read_text()
    assert "| `use_rslora` | `True` |" in card and "| `use_dora` | `True` |" in card
    assert "load_in_4bit" not in card and "bnb_4bit_quant_type" not in card  # defaults stay off the card


def test_card_says_the_base_was_quantized(tiny_model_dir, tmp_path, data_env):
    """A QLoRA run's card lists its quantization (the finished run's record, as a CUDA run would write it)."""
    import shutil

    from lm_forget.hub.card import render_card
    from lm_forget.train.api import train
    from lm_forget.train.cli import parse_config

    argv = ["--config", str(REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml"), "--model", str(tiny_model_dir),
            "--output_dir", str(tmp_path / "out"), "--num_examples", "8", "--max_steps", "1", "--disable_tqdm", "true"]
    folder = train(parse_config(argv)).output_dir
    assert "load_in_4bit" not in (folder / "README.md").read_text()
    quantized = tmp_path / "quantized"
    shutil.copytree(folder, quantized)
    state = json.loads((quantized / "forget_config.json").read_text())
    state["settings"].update(load_in_4bit=True, use_bnb_nested_quant=True)
    (quantized / "forget_config.json").write_text(json.dumps(state))
    card = str(render_card(quantized))
    assert "| `load_in_4bit` | `True` |" in card and "| `bnb_4bit_quant_type` | `nf4` |" in card
    assert "| `use_bnb_nested_quant` | `True` |" in card and "load_in_8bit" not in card


def test_quantization_config_comes_from_trl(tiny_model_dir, tmp_path):
    import torch

    from lm_forget.train.peft_setup import quantization_config

    assert quantization_config(_config(tiny_model_dir, tmp_path)) is None
    nf4 = quantization_config(_config(tiny_model_dir, tmp_path, load_in_4bit=True))
    assert nf4.load_in_4bit and not nf4.load_in_8bit and nf4.bnb_4bit_quant_type == "nf4"
    assert not nf4.bnb_4bit_use_double_quant and nf4.bnb_4bit_compute_dtype == torch.float32  # CPU: float32
    fp4 = quantization_config(_config(tiny_model_dir, tmp_path, load_in_4bit=True, bnb_4bit_quant_type="fp4",
                                      use_bnb_nested_quant=True, model_init_kwargs={"dtype": "bfloat16"}))
    assert fp4.bnb_4bit_quant_type == "fp4" and fp4.bnb_4bit_use_double_quant
    assert fp4.bnb_4bit_compute_dtype == torch.bfloat16  # the explicit model dtype is the compute dtype
    int8 = quantization_config(_config(tiny_model_dir, tmp_path, load_in_8bit=True))
    assert int8.load_in_8bit and not int8.load_in_4bit


def test_kbit_device_map_is_none_without_cuda():
    import torch

    from lm_forget.train.peft_setup import kbit_device_map

    if torch.cuda.is_available():
        assert kbit_device_map() == {"": 0}
    else:
        assert kbit_device_map() is None


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes not installed (pip install 'lm-forget[qlora]')")
def test_quantized_base_loads_in_4bit_and_the_adapter_trains(tiny_model_dir, tmp_path):
    """The kwargs ``train`` loads a quantized base with, on CPU (bitsandbytes' CPU kernels): 4-bit base, LoRA trains."""
    import torch
    from bitsandbytes.nn import Linear4bit
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from lm_forget.train.peft_setup import compute_dtype, lora_config, quantized_init_kwargs

    config = _config(tiny_model_dir, tmp_path, load_in_4bit=True, use_bnb_nested_quant=True, lora_r=4)
    kwargs = quantized_init_kwargs(config, {})
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=getattr(torch, compute_dtype(config)),
                                                 **kwargs)
    assert model.is_loaded_in_4bit and isinstance(model.model.layers[0].self_attn.q_proj, Linear4bit)
    peft_model = get_peft_model(model, lora_config(config, model))
    lora = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    assert lora and all(".lora_" in n for n in lora)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.randint(3, 500, (4, 24), generator=torch.Generator().manual_seed(0))
    losses = []
    for _ in range(5):
        loss = peft_model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    after = dict(peft_model.named_parameters())
    assert any(not torch.equal(after[n].detach(), v) for n, v in lora.items())
    four_bit = [m.weight for m in model.modules() if isinstance(m, Linear4bit)]
    assert four_bit and all(not w.requires_grad and w.grad is None for w in four_bit)  # the 4-bit base is frozen
    assert losses[-1] < losses[0]


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(("fields", "says"), [
    ({"load_in_4bit": True, "load_in_8bit": True}, "both set; keep one"),
    ({"load_in_4bit": True, "use_lora": False}, "--load_in_4bit needs LoRA"),
    ({"load_in_8bit": True, "use_lora": False}, "--load_in_8bit needs LoRA"),
    ({"use_bnb_nested_quant": True}, "--use_bnb_nested_quant applies to a 4-bit base only"),
    ({"load_in_8bit": True, "bnb_4bit_quant_type": "fp4"}, "--bnb_4bit_quant_type applies to a 4-bit base only"),
    ({"load_in_4bit": True, "bnb_4bit_quant_type": "int4"}, "use nf4 (QLoRA's) or fp4"),
])
def test_impossible_combinations_are_refused_at_parse_time(tiny_model_dir, tmp_path, fields, says):
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
        _config(tiny_model_dir, tmp_path, **fields)


def test_no_lora_flag_with_4bit_is_refused(tiny_model_dir, tmp_path):
    from lm_forget.train.cli import parse_config

    with pytest.raises(ConfigError, match="full fine-tuning .*--no-lora"):
        parse_config(["--model", str(tiny_model_dir), "--tasks", "forget_cola", "--no-lora", "--load_in_4bit", "true",
                      "--output_dir", str(tmp_path / "out")])


def test_quantization_without_cuda_is_refused_before_training(tiny_model_dir, tmp_path, data_env):
    import torch

    from lm_forget.train.api import train

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = _config(tiny_model_dir, tmp_path, load_in_4bit=True)
    with pytest.raises(ConfigError, match="--load_in_4bit needs a CUDA GPU \\(torch sees no CUDA device\\)"):
        train(config)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_use_cpu_with_quantization_is_refused(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    from lm_forget.train.peft_setup import check_quantization_environment

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, told to train on the CPU
    config = _config(tiny_model_dir, tmp_path, load_in_8bit=True)
    with pytest.raises(ConfigError, match="--load_in_8bit needs a CUDA GPU \\(use_cpu is set\\)"):
        check_quantization_environment(config)


@pytest.mark.skipif(HAS_BNB, reason="bitsandbytes is installed here")
def test_missing_bitsandbytes_says_what_to_install(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    from lm_forget.train.peft_setup import check_quantization_environment

    config = _config(tiny_model_dir, tmp_path, load_in_4bit=True)
    config.use_cpu = False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # past the CUDA check: bitsandbytes is next
    with pytest.raises(ConfigError, match=r"needs bitsandbytes .* pip install 'lm-forget\[qlora\]'"):
        check_quantization_environment(config)


def test_quantization_config_twice_is_refused(tiny_model_dir, tmp_path):
    from lm_forget.train.peft_setup import quantized_init_kwargs

    config = _config(tiny_model_dir, tmp_path, load_in_4bit=True)
    with pytest.raises(ConfigError, match="drop model_init_kwargs.quantization_config"):
        quantized_init_kwargs(config, {"quantization_config": {"load_in_4bit": True}})


# ------------------------------------------------------------------ studies: checks and step keys

STUDY = {
    "model": {"name_or_path": "some/model"},
    "tasks": {"finetune": ["forget_cola", "forget_rte"], "forget": ["forget_cola", "forget_rte"],
              "eval": ["forget_cola", "forget_rte"]},
    "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "relearn", "eval_relearn",
               "analyze"],
    "seeds": [0, 1],
    "forget": {"num_examples": [100]},
    "relearn": {"num_examples": [10]},
}


def _study(tmp_path, **sections):
    from lm_forget.run import run_config_from_dict

    data = copy.deepcopy(STUDY)
    data["run_dir"] = str(tmp_path / "run")
    for name, value in sections.items():
        if isinstance(value, dict):
            data.setdefault(name, {}).update(value)
        else:
            data[name] = value
    return run_config_from_dict(data)


def _keys(tmp_path, **sections):
    from lm_forget.run import build_plan

    return {s.name: s.key for s in build_plan(_study(tmp_path, **sections)).steps}


def test_new_settings_at_their_defaults_keep_every_step_key(tmp_path):
    base = _keys(tmp_path)
    defaults = {"lora_modules_to_save": [], "use_rslora": False, "use_dora": False, "load_in_4bit": False,
                "load_in_8bit": False, "bnb_4bit_quant_type": "nf4", "use_bnb_nested_quant": False}
    for section in ("finetune", "forget", "relearn"):
        assert _keys(tmp_path, **{section: defaults}) == base, section
    assert _keys(tmp_path, forget={"lora_modules_to_save": None}) == base


def test_new_settings_change_the_keys_of_their_steps(tmp_path):
    base = _keys(tmp_path)
    rslora = _keys(tmp_path, forget={"use_rslora": True})
    changed = {n for n in base if rslora[n] != base[n]}
    assert "forget/forget_cola/n100/s0" in changed and "finetune" not in changed
    qlora = _keys(tmp_path, finetune={"load_in_4bit": True}, forget={"load_in_4bit": True},
                  device="cuda")
    assert qlora["finetune"] != _keys(tmp_path, device="cuda")["finetune"]


@pytest.mark.parametrize(("sections", "says"), [
    ({"forget": {"load_in_4bit": True}}, "forget.load_in_4bit needs a CUDA GPU, and this study trains on CPU"),
    ({"forget": {"use_lora": False, "load_in_4bit": True}, "device": "cuda"}, "needs LoRA"),
    ({"forget": {"use_lora": False}, "relearn": {"load_in_8bit": True}, "device": "cuda"},
     "relearn: --load_in_8bit needs LoRA"),
    ({"finetune": {"load_in_4bit": True, "load_in_8bit": True}, "device": "cuda"}, "keep one"),
])
def test_study_configs_refuse_impossible_quantization_at_load_time(tmp_path, sections, says):
    with pytest.raises(ConfigError, match=says):
        _study(tmp_path, **sections)


def test_shipped_qlora_configs_parse(tiny_model_dir, tmp_path):
    from lm_forget.train.cli import parse_config

    configs = sorted((REPO_ROOT / "configs" / "train").glob("qlora_*.yaml"))
    assert configs
    for path in configs:
        config = parse_config(["--config", str(path), "--output_dir", str(tmp_path / path.stem)])
        assert config.load_in_4bit and config.use_lora and config.bnb_4bit_quant_type == "nf4"
        assert config.use_bnb_nested_quant
