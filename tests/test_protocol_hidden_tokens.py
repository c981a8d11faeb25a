"""Variance and probe features use exactly the token ids lm-eval's HFLM scores (BOS included for the Llama
tokenizer of stories260K) and the trainer trains on."""

from __future__ import annotations

import pytest

from lm_forget.analysis.hidden import last_token_states, scored_ids
from lm_forget.analysis.probes import pair_texts
from lm_forget.analysis.variance import variance_context


@pytest.fixture(scope="module")
def real_docs(mirror_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
        from lm_forget.data.api import load_docs

        return load_docs("forget_cola", "train")[:15] + load_docs("forget_openbookqa", "train")[:15]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from lm_forget.modeling import ModelRef, load_for_inference

    return load_for_inference(ModelRef(str(tiny_model_dir)), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def hflm(tiny_model_dir):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=1)


def test_ids_equal_hflm_with_bos(real_docs, tiny, hflm):
    from lm_forget.train.dataset import encode_pair

    _, tok = tiny
    assert tok.bos_token_id is not None
    pairs, _ = pair_texts(real_docs)
    for context, continuation in pairs:
        hf_context, hf_continuation = hflm._encode_pair(context, continuation)
        assert scored_ids(tok, (context, continuation)) == hf_context + hf_continuation
        assert scored_ids(tok, (context, continuation)) == sum(encode_pair(tok, context, continuation), [])
        assert scored_ids(tok, context) == hf_context  # the prompt: HFLM's context encoding
        assert hf_context[0] == tok.bos_token_id
    for doc in real_docs:
        ids = scored_ids(tok, variance_context(doc))
        assert ids[0] == tok.bos_token_id and ids == hflm.tok_encode(variance_context(doc))


def test_states_are_taken_on_exactly_the_scored_ids(real_docs, tiny):
    import torch

    model, tok = tiny
    pairs, _ = pair_texts(real_docs[:6])
    texts = [variance_context(d) for d in real_docs[:6]] + pairs
    (batch,) = list(last_token_states(model, tok, texts, layers=[3], batch_size=len(texts)))
    for i, text in enumerate(texts):
        ids = torch.tensor([scored_ids(tok, text)])
        with torch.inference_mode():
            ref = model.model(input_ids=ids, output_hidden_states=True).hidden_states[3][0, -1]
            no_bos = tok(text if isinstance(text, str) else "".join(text), add_special_tokens=False,
                         return_tensors="pt").input_ids
            old = model.model(input_ids=no_bos, output_hidden_states=True).hidden_states[3][0, -1]
        assert torch.allclose(batch[3][i], ref, atol=1e-4), i
        assert not torch.allclose(batch[3][i], old, atol=1e-3), i  # what the features used before: no BOS
