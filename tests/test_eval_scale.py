"""Evaluation that scales: the hf pool on a device_map-dispatched base, and one vLLM engine for every adapter.

vLLM cannot run here (no GPU); its argument construction is tested against lm-eval's own ``VLLM`` signature,
and bench/gpu_check.sh runs it where vllm imports."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from lm_forget.errors import ConfigError
from lm_forget.modeling import ModelRef
from lm_forget.run import build_plan, run_config_from_dict
from lm_forget.run.models import ModelPool, eval_pool
from lm_forget.run.vllm_pool import VLLMPool, adapter_rank, engine_args, engine_lora_rank


def _adapter(base: Path, out: Path, r: int, seed: int = 0) -> str:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    lora = LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora)
    model.save_pretrained(out)
    return str(out)


def test_engine_rank_is_the_smallest_vllm_rank_that_holds_every_adapter():
    assert engine_lora_rank([8]) == 8 and engine_lora_rank([12]) == 16 and engine_lora_rank([16, 64, 8]) == 64
    assert engine_lora_rank([]) == 1
    with pytest.raises(ConfigError, match="above the largest rank vLLM serves"):
        engine_lora_rank([600])


def test_adapter_rank_reads_the_peft_config(tmp_path, tiny_model_dir):
    folder = _adapter(tiny_model_dir, tmp_path / "a", r=12)
    assert adapter_rank(folder) == 12
    cfg = json.loads((Path(folder) / "adapter_config.json").read_text())
    cfg["rank_pattern"] = {"v_proj": 40}
    (Path(folder) / "adapter_config.json").write_text(json.dumps(cfg))
    assert adapter_rank(folder) == 40
    with pytest.raises(ConfigError, match="is .* a PEFT adapter"):
        adapter_rank(tmp_path)


def _vllm_init_params() -> set[str]:
    import importlib.util

    source = Path(importlib.util.find_spec("lm_eval.models.vllm_causallms").origin).read_text()
    cls = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == "VLLM")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    assert init.args.kwarg is not None  # the rest goes to vllm.LLM(**model_args)
    return {a.arg for a in init.args.args}


def test_engine_args_fit_lm_evals_vllm_and_turn_on_lora_and_prefix_caching():
    ref = ModelRef("org/base", "main", None, "bfloat16").with_adapter("/runs/forget/a")
    args = engine_args(ref, lora_rank=64, max_loras=4, batch_size="auto", extra={"tensor_parallel_size": 2})
    assert args == {"pretrained": "org/base", "revision": "main", "dtype": "bfloat16", "batch_size": "auto",
                    "enable_prefix_caching": True, "lora_local_path": "/runs/forget/a", "max_lora_rank": 64,
                    "max_loras": 4, "tensor_parallel_size": 2}
    named = _vllm_init_params()
    # lm-eval's own parameters by name; the engine options pass through its **kwargs to vllm.LLM
    assert {"pretrained", "revision", "dtype", "batch_size", "lora_local_path", "max_lora_rank",
            "tensor_parallel_size"} <= named
    assert "enable_prefix_caching" not in named and "max_loras" not in named
    base = engine_args(ref.with_adapter(None), lora_rank=None, max_loras=4, batch_size=8,
                       extra={"enable_prefix_caching": False})
    assert "lora_local_path" not in base and base["enable_prefix_caching"] is False  # the user's word wins


class _Engine:
    def __init__(self, **kwargs):
        self.kwargs, self.lora_request = kwargs, "lm-eval's own"


def test_one_engine_serves_every_adapter_of_a_base(tmp_path, tiny_model_dir):
    a, b = (_adapter(tiny_model_dir, tmp_path / n, r=8, seed=i) for i, n in enumerate("ab"))
    big = _adapter(tiny_model_dir, tmp_path / "big", r=32)
    pool = VLLMPool(batch_size=4, ranks=[8], factory=_Engine, lora_request=lambda *x: x)
    base = ModelRef(str(tiny_model_dir))
    seen = []
    for ref in (base.with_adapter(a), base.with_adapter(b), base.with_adapter(a), base):
        with pool.use(ref) as lm:
            seen.append(lm.lora_request)
    assert pool.engines == 1 and seen == [("a1", 1, a), ("a2", 2, b), ("a1", 1, a), None]
    assert lm.kwargs["max_lora_rank"] == 8 and lm.kwargs["enable_prefix_caching"] is True
    with pool.use(base.with_adapter(big)) as lm:  # a larger rank than the engine holds: one rebuild
        assert lm.kwargs["max_lora_rank"] == 32 and lm.lora_request == ("a1", 1, big)
    assert pool.engines == 2
    with pool.use(base.with_adapter(a)) as lm:  # the rebuilt engine serves the small ones too
        assert lm.lora_request == ("a2", 2, a)
    assert pool.engines == 2
    pool.close()
    with pool.use(base) as lm:
        assert lm.lora_request is None and "lora_local_path" not in lm.kwargs
    assert pool.engines == 3


def test_the_study_picks_its_pool_from_eval_backend(tmp_path):
    data = {"model": {"name_or_path": "some/model"}, "run_dir": str(tmp_path / "run"),
            "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola"], "eval": ["forget_cola"]},
            "forget": {"lora_r": 32}}
    vllm = eval_pool(run_config_from_dict({**data, "eval": {"backend": "vllm", "model_args": {"seed": 1}}}))
    assert isinstance(vllm, VLLMPool) and vllm.ranks == [16, 32] and vllm.model_args == {"seed": 1}
    hf = eval_pool(run_config_from_dict({**data, "eval": {"device_map": "auto"}}))
    assert isinstance(hf, ModelPool) and hf.device_map == "auto"
    # where the model is placed is speed, not results: no step reruns
    keys = {s.name: s.key for s in build_plan(run_config_from_dict(data)).steps}
    mapped = {s.name: s.key for s in build_plan(run_config_from_dict({**data, "eval": {"device_map": "auto"}})).steps}
    assert keys == mapped


def test_a_dispatched_base_swaps_adapters_and_scores_as_the_plain_one(tmp_path, tiny_model_dir):
    a, b = (_adapter(tiny_model_dir, tmp_path / n, r=8, seed=i) for i, n in enumerate("ab"))
    ids = torch.tensor([[1, 45, 67, 89, 120, 33, 7]])
    base = ModelRef(str(tiny_model_dir), dtype="float32")
    plain, mapped = ModelPool(device="cpu"), ModelPool(device_map="auto")  # auto: accelerate places the layers
    for ref in (base, base.with_adapter(a), base.with_adapter(b)):
        with plain.use(ref) as (m1, _), torch.no_grad():
            want = m1(ids).logits
        with mapped.use(ref) as (m2, _), torch.no_grad():
            got = m2(ids.to(m2.device)).logits.cpu()
            assert (ref.adapter is None) != hasattr(m2, "peft_config")  # the adapter is on, or none is
        assert torch.allclose(want, got, atol=1e-5)
    assert mapped.loads == 1  # one base load, adapters swapped on it


def test_device_map_belongs_to_the_hf_backend(tmp_path):
    data = {"model": {"name_or_path": "some/model"}, "run_dir": str(tmp_path / "run"),
            "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola"], "eval": ["forget_cola"]},
            "eval": {"backend": "vllm", "device_map": "auto"}}
    with pytest.raises(ConfigError, match="tensor_parallel_size"):
        run_config_from_dict(data)
    with pytest.raises(ConfigError, match="eval.device_map: auto"):
        run_config_from_dict({**data, "eval": {"model_args": {"parallelize": True}}})
