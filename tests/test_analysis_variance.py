"""Streaming total variance: exact vs numpy, batch-size and padding invariant on the real tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lm_forget.analysis.hidden import last_real_index, last_token_states, resolve_layers
from lm_forget.analysis.variance import StreamingTrace, stream_variance, variance_context
from lm_forget.errors import ConfigError


def _trace_in_batches(x: np.ndarray, size: int) -> float:
    acc = StreamingTrace()
    for start in range(0, len(x), size):
        acc.update(x[start:start + size])
    return acc.trace


@pytest.mark.parametrize("shape", [(500, 64), (1000, 300), (37, 5)])
def test_streaming_trace_equals_numpy(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * rng.uniform(0.1, 50, shape[1]) + 1e3  # offset: catastrophic-cancellation bait
    ref = np.trace(np.cov(x, rowvar=False))
    for size in (1, 17, len(x)):
        assert _trace_in_batches(x, size) == pytest.approx(ref, rel=1e-9)
    assert _trace_in_batches(x, 1) == pytest.approx(_trace_in_batches(x, 17), rel=1e-12)
    acc = StreamingTrace()
    acc.update(torch.from_numpy(x).float())  # torch input, upcast to float64
    assert acc.trace == pytest.approx(np.trace(np.cov(x.astype(np.float32).astype(np.float64), rowvar=False)),
                                      rel=1e-9)


def test_trace_needs_two_rows_and_mask_indexing():
    acc = StreamingTrace()
    acc.update(np.ones((1, 3)))
    assert np.isnan(acc.trace)
    right = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 0, 1], [1, 1, 1, 1]])
    assert last_real_index(right).tolist() == [2, 0, 3]
    assert last_real_index(left).tolist() == [3, 3, 3]
    assert resolve_layers(-5, 6) == [1] and resolve_layers("all", 3) == [0, 1, 2]
    with pytest.raises(ConfigError, match="out of range"):
        resolve_layers(-7, 6)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from lm_forget.modeling import ModelRef, load_for_inference

    return load_for_inference(ModelRef(str(tiny_model_dir)), device="cpu", dtype="float32")


TEXTS = [("Once upon a time " * (1 + i % 7)) + f"there was a cat number {i}." for i in range(40)]


@pytest.mark.e2e
def test_real_model_batch_and_padding_invariant(tiny):
    model, tok = tiny
    layers = [1, 5]
    ref = stream_variance(model, tok, TEXTS, layers=layers, batch_size=1)
    stacked = np.concatenate([s[1].double().numpy() for s in last_token_states(
        model, tok, TEXTS, layers=[1], batch_size=1)])
    assert ref[1].trace == pytest.approx(np.trace(np.cov(stacked, rowvar=False)), rel=1e-9)
    for side in ("left", "right"):
        got = stream_variance(model, tok, TEXTS, layers=layers, batch_size=17, padding_side=side)
        for layer in layers:
            # identical up to float32 kernel rounding of different batch shapes
            assert got[layer].trace == pytest.approx(ref[layer].trace, rel=1e-5), (side, layer)
    # the last *real* token: a padded row's state equals the unpadded one
    one = next(last_token_states(model, tok, TEXTS[:1], layers=[5], batch_size=1))[5]
    for side in ("left", "right"):
        batch = next(last_token_states(model, tok, TEXTS[:9], layers=[5], batch_size=9, padding_side=side))[5]
        assert torch.allclose(batch[0], one[0], atol=1e-4), side


def test_variance_context_uses_prompt_not_gold():
    doc = {"prompt": "Q?", "choices": ["a", "b"], "label": 1, "continuation": "", "target_delimiter": " "}
    assert variance_context(doc) == "Q?"
    multi = {"prompt": "", "choices": ["ctx A", "ctx B"], "label": 1, "continuation": "end",
             "target_delimiter": " "}
    assert variance_context(multi) == "ctx A"
