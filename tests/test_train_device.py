"""Device and precision defaults: one decision (lm_forget.train.device) for train, the runner and features."""

from __future__ import annotations

import pytest
import torch

from lm_forget.train.device import resolve_precision


@pytest.fixture
def machine(monkeypatch):
    """Pretend to be a machine with the given accelerator (None = CPU only)."""

    def make(kind: str | None, bf16: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: kind == "cuda")
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: kind == "cuda" and bf16)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: kind == "mps")

    return make


def test_cpu_only_machine_gets_float32_without_checkpointing(machine):
    machine(None)
    p = resolve_precision()
    assert (p.device, p.bf16, p.fp16, p.use_cpu, p.activation_checkpointing, p.dtype) == \
        ("cpu", False, False, True, False, "float32")


def test_bf16_gpu_gets_bf16_and_checkpointing(machine):
    machine("cuda", bf16=True)
    p = resolve_precision()
    assert (p.device, p.bf16, p.use_cpu, p.activation_checkpointing, p.dtype) == ("cuda", True, False, True, "auto")


def test_gpu_without_bf16_trains_in_float32(machine):
    machine("cuda", bf16=False)  # e.g. a V100 or T4
    p = resolve_precision()
    assert (p.device, p.bf16, p.fp16, p.use_cpu) == ("cuda", False, False, False)


def test_mps_gets_no_bf16_and_no_checkpointing(machine):
    machine("mps")
    p = resolve_precision()
    assert (p.device, p.bf16, p.use_cpu, p.activation_checkpointing) == ("mps", False, False, False)


def test_use_cpu_on_a_gpu_machine_picks_the_cpu(machine):
    machine("cuda")
    p = resolve_precision(use_cpu=True)
    assert (p.device, p.bf16, p.activation_checkpointing, p.dtype) == ("cpu", False, False, "float32")
    assert resolve_precision(device="cpu").device == "cpu"


def test_explicit_values_always_win(machine):
    machine(None)
    p = resolve_precision(bf16=True, activation_checkpointing=True, dtype="bfloat16")
    assert (p.bf16, p.activation_checkpointing, p.dtype, p.use_cpu) == (True, True, "bfloat16", True)
    machine("cuda")
    p = resolve_precision(bf16=False, fp16=True, activation_checkpointing=False, device="cuda:1")
    assert (p.device, p.bf16, p.fp16, p.activation_checkpointing) == ("cuda:1", False, True, False)
    assert resolve_precision(fp16=True).bf16 is False  # never both mixed precisions at once


def _parse(*flags: str):
    from lm_forget.train.cli import parse_config

    return parse_config(["--model", "m", "--tasks", "forget_cola", "--output_dir", "unused", *flags])


def test_train_cli_defaults_run_on_a_cpu_machine(machine):
    """The README's `lm-forget train` flags need no --use_cpu/--bf16 on a laptop (they failed before)."""
    machine(None)
    config = _parse()
    assert (config.use_cpu, config.bf16, config.activation_checkpointing, config.model_dtype) == \
        (True, False, False, "float32")
    sft = config.to_sft_config()
    # transformers < 5.23 (our floor) knows the setting as gradient_checkpointing
    checkpointing = getattr(sft, "activation_checkpointing", getattr(sft, "gradient_checkpointing", None))
    assert (sft.use_cpu, sft.bf16, checkpointing) == (True, False, False)


def test_train_cli_explicit_flags_are_honoured(machine):
    machine(None)
    config = _parse("--bf16", "true", "--gradient_checkpointing", "true")  # the deprecated alias counts too
    assert (config.bf16, config.activation_checkpointing, config.use_cpu) == (True, True, True)
    config = _parse("--activation_checkpointing", "true", "--model_init_kwargs", '{"dtype": "bfloat16"}')
    assert config.activation_checkpointing and config.model_init_kwargs == {"dtype": "bfloat16"}


def test_runner_and_features_use_the_same_decision(machine, tmp_path):
    """The study runner's train kwargs and `lm-forget features` both resolve through resolve_precision."""
    from lm_forget.run.config import load_run_config
    from lm_forget.run.training import forget_config_kwargs
    from lm_forget.train.config import ForgetConfig

    machine(None)
    path = tmp_path / "run.yaml"
    path.write_text(
        f"run_dir: {tmp_path / 'run'}\nmodel: {{name_or_path: m, dtype: bfloat16}}\n"
        "tasks: {finetune: [forget_cola], forget: [forget_cola], eval: [forget_cola]}\n"
        "stages: [finetune, forget]\n", encoding="utf-8")
    config = load_run_config(path)
    section = config.finetune
    kwargs = forget_config_kwargs(config, section, stage="finetune", tasks=["forget_cola"], num_examples=4, seed=0,
                                  init=None, output_dir=tmp_path / "out", resume=False)
    forget = ForgetConfig(**kwargs)
    assert (forget.use_cpu, forget.bf16, forget.activation_checkpointing) == (True, False, False)
    assert forget.model_init_kwargs == {"dtype": "bfloat16"}  # the run config's explicit dtype reaches the model


def test_features_load_a_bf16_checkpoint_in_float32_on_cpu(machine, tiny_model_dir, mirror_dir, tmp_path,
                                                           tmp_path_factory, monkeypatch):
    """`lm-forget features` with the default dtype: a bf16-stored model runs in float32 on a CPU machine."""
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lm_forget.analysis.api import extract_features

    machine(None)
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    monkeypatch.setenv("LM_FORGET_CACHE", str(tmp_path_factory.getbasetemp() / "lm_forget_cache"))
    bf16_dir = tmp_path / "bf16_model"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).save_pretrained(bf16_dir)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(bf16_dir)
    out = extract_features(str(bf16_dir), peft=None, tasks=["forget_cola"], layer=-1, out=tmp_path / "f", limit=4)
    record = json.loads((out / "features.json").read_text())
    assert (record["device"], record["dtype"]) == ("cpu", "float32")
    assert record["tasks"]["forget_cola"]["variance"][str(record["primary_layer"])] > 0


@pytest.mark.e2e
def test_training_with_another_thread_count_agrees_within_tolerance(tiny_model_dir, mirror_dir, tmp_path,
                                                                    tmp_path_factory, monkeypatch):
    """The README's determinism promise: another torch thread count changes float reduction order, so a run
    is not bit-identical, but its adapter agrees to rtol 1e-3 (labels are identical by construction)."""
    from safetensors.torch import load_file

    from lm_forget.train.api import train
    from lm_forget.train.cli import parse_config

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    # the session's shared task cache (as the analysis tests use): forget_cola is built once
    monkeypatch.setenv("LM_FORGET_CACHE", str(tmp_path_factory.getbasetemp() / "lm_forget_cache"))
    threads_before = torch.get_num_threads()
    results = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out = tmp_path / f"t{threads}"
            config = parse_config(["--model", str(tiny_model_dir), "--tasks", "forget_cola", "--num_examples", "32",
                                   "--max_steps", "4", "--per_device_train_batch_size", "8", "--learning_rate",
                                   "1e-3", "--output_dir", str(out), "--save_steps", "100", "--disable_tqdm", "true",
                                   "--lora_r", "8", "--lora_alpha", "16"])
            results[threads] = (train(config), load_file(str(out / "adapter_model.safetensors")))
    finally:
        torch.set_num_threads(threads_before)
    (one, w1), (two, w2) = results[1], results[2]
    assert one.labels_hash == two.labels_hash and one.global_step == two.global_step == 4
    assert w1.keys() == w2.keys()
    for key in w1:
        torch.testing.assert_close(w1[key], w2[key], rtol=1e-3, atol=1e-5)
