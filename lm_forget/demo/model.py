"""The demo's tiny Llama-style model and its word-level tokenizer, both built offline from the demo data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lm_forget.data.hashing import stable_int

SPECIALS = ("<unk>", "<pad>", "<s>", "</s>")


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the demo model (a ``transformers.LlamaConfig`` is made from it).

    Attributes:
        hidden_size: width of the residual stream.
        intermediate_size: MLP width.
        num_hidden_layers: decoder layers (>= 5 so the "fifth-to-last layer" of the paper exists).
        num_attention_heads: attention heads.
        max_position_embeddings: longest sequence (demo prompts are < 20 tokens).
    """

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 5
    num_attention_heads: int = 4
    max_position_embeddings: int = 64


def build_tokenizer(texts: Iterable[str]):
    """A WordLevel tokenizer over the words of ``texts``, wrapped as ``PreTrainedTokenizerFast``.

    Whitespace pre-tokenization makes " yes" and "yes" the same token, so lm-eval's context/continuation
    split and the trainer's prompt/completion split agree by construction.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for text in texts for w in pre_tokenizers.Whitespace().pre_tokenize_str(text)
                    for w in [w[0]]})
    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *words])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="</s>", model_max_length=64)


def build_model(tokenizer: Any, spec: TinyModelSpec, *, seed: int):
    """A randomly initialized ``LlamaForCausalLM``; the init is seeded without touching global RNG state."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stable_int(seed, "lm-forget-demo-model") % (2**31))
        model = LlamaForCausalLM(config)
    return model


def save_pretrained_model(out: Path, texts: Iterable[str], spec: TinyModelSpec, *, seed: int) -> Path:
    """Build tokenizer and model and save both to ``out`` (a folder ``from_pretrained`` loads)."""
    import json

    tokenizer = build_tokenizer(texts)
    model = build_model(tokenizer, spec, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "demo_model.json").write_text(json.dumps({"seed": seed, **asdict(spec)}, indent=2) + "\n")
    return out
