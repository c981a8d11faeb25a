"""The quantization attack's model: adapter merged (PEFT), weights quantized (transformers + bitsandbytes) on CPU."""

from __future__ import annotations

import importlib.util

import pytest
from studies import random_adapter

from lm_forget.modeling import ModelRef, load_model

HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


def _logits(model, tokens):
    import torch

    with torch.no_grad():
        return model(torch.tensor([tokens])).logits[0].float()


def test_merge_keeps_the_adapters_answers(tmp_path, tiny_model_dir):
    from lm_forget.run.quantized import merge_to

    adapter = random_adapter(tiny_model_dir, tmp_path / "adapter", seed=3)
    ref = ModelRef(str(tiny_model_dir), dtype="float32", adapter=str(adapter))
    merge_to(ref, tmp_path / "merged")
    tokens = [1, 20, 45, 300, 7, 99]
    with_adapter = _logits(load_model(ref), tokens)
    merged = _logits(load_model(ModelRef(str(tmp_path / "merged"), dtype="float32")), tokens)
    base = _logits(load_model(ModelRef(str(tiny_model_dir), dtype="float32")), tokens)
    assert (with_adapter - base).abs().max() > 0.1  # the adapter matters, so the check below is not vacuous
    assert (merged - with_adapter).abs().max() < 1e-4


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes not installed (pip install 'lm-forget[quantize]')")
@pytest.mark.parametrize(("bits", "layer"), [(8, "Linear8bitLt"), (4, "Linear4bit")])
def test_quantized_model_is_bitsandbytes_and_close_to_full_precision(tmp_path, tiny_model_dir, bits, layer):
    import bitsandbytes.nn as bnb_nn
    import torch

    from lm_forget.run.quantized import QuantizedPool

    adapter = random_adapter(tiny_model_dir, tmp_path / "adapter", seed=3)
    ref = ModelRef(str(tiny_model_dir), dtype="float32", adapter=str(adapter))
    tokens = [1, 20, 45, 300, 7, 99, 12, 64]
    full = _logits(load_model(ref), tokens)
    with QuantizedPool(ref, bits, workdir=tmp_path / "work") as pool, pool.use(ref) as (model, tokenizer):
        q_proj = model.model.layers[0].self_attn.q_proj
        assert isinstance(q_proj, getattr(bnb_nn, layer))
        quantized = _logits(model, tokens)
        assert tokenizer is not None
        with pytest.raises(ValueError, match="this pool holds"), pool.use(ref.with_adapter(None)):
            pass
    assert not list((tmp_path / "work").glob(".merged-*"))  # the full-precision copy is deleted
    diff = (quantized - full).abs().max().item()
    assert diff > 0  # weights really changed precision
    # ... but it is still the same model: its logits correlate with full precision's (an unrelated model: ~0;
    # measured 0.99+ for int8 and 0.86 for nf4, coarse on this 64-wide model with a large random adapter)
    corr = torch.corrcoef(torch.stack([quantized.flatten(), full.flatten()]))[0, 1].item()
    assert corr > (0.98 if bits == 8 else 0.75), corr
