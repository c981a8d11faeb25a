"""Batched hidden states at each text's last *real* token, correct under left or right padding.

Position ids are derived from the attention mask so a left-padded text sees the same positions as
unpadded (transformers only does this itself inside ``generate``). Only the decoder body runs: the
LM head is never needed for hidden states.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def n_hidden_states(model) -> int:
    """How many hidden states a forward returns: embeddings + one per layer."""
    cfg = model.config
    cfg = getattr(cfg, "get_text_config", lambda: cfg)()
    return int(cfg.num_hidden_layers) + 1


def resolve_layers(spec, n_states: int) -> list[int]:
    """Layer spec (int, negative from the end; list of ints; "all") -> sorted non-negative indices of
    ``hidden_states`` (0 = embeddings, -1 = last layer)."""
    from lm_forget.errors import ConfigError

    if spec == "all":
        return list(range(n_states))
    items = [spec] if isinstance(spec, int) else list(spec)
    out = set()
    for item in items:
        i = int(item)
        if not -n_states <= i < n_states:
            raise ConfigError(f"layer {i} out of range: the model has {n_states} hidden states "
                              f"(embeddings + {n_states - 1} layers), valid -{n_states}..{n_states - 1}")
        out.add(i % n_states)
    return sorted(out)


def _body(model):
    """The decoder body (LoRA layers included: PEFT injects them in place)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    getter = getattr(base, "get_decoder", None)
    body = getter() if callable(getter) else None
    return body if body is not None else base


def last_real_index(attention_mask):
    """Index of the last 1 in each row of the mask (works for left and right padding)."""
    width = attention_mask.shape[1]
    return width - 1 - attention_mask.flip(1).int().argmax(dim=1)


Text = str | tuple[str, str]


def scored_ids(tokenizer, text: Text) -> list[int]:
    """Token ids exactly as lm-eval's HFLM scores them and our trainer trains on them.

    A string is a context (the prompt): HFLM's context encoding, BOS included where the tokenizer adds
    one (Llama). A ``(context, continuation)`` pair is the whole scored sequence, context ids + continuation
    ids as HFLM's ``_encode_pair`` splits them.
    """
    from lm_forget.train.dataset import encode_pair

    if isinstance(text, str):
        return encode_pair(tokenizer, text, "")[0]
    context_ids, continuation_ids = encode_pair(tokenizer, text[0], text[1])
    return context_ids + continuation_ids


def last_token_states(model, tokenizer, texts: Sequence[Text], *, layers: list[int], batch_size: int = 16,
                      padding_side: str = "right", device: str = "cpu", max_length: int | None = None,
                      progress: str | None = None) -> Iterator[dict[int, object]]:
    """Yield, per batch, ``{layer: tensor (batch, hidden)}`` at the last real token of each text.

    Texts are encoded by :func:`scored_ids` (the ids lm-eval scores, BOS included where HFLM adds it).
    Over-long texts are truncated from the left, keeping the last token.
    """
    import torch
    from tqdm.auto import tqdm

    body = _body(model)
    tokenizer.padding_side = padding_side
    limit = max_length or getattr(model.config, "max_position_embeddings", None)
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc=progress, disable=progress is None, leave=False):
        ids = [scored_ids(tokenizer, t) for t in texts[start:start + batch_size]]
        if any(not row for row in ids):
            raise ValueError("an empty text has no last token")
        ids = [row[-limit:] if limit else row for row in ids]
        enc = tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        mask = enc["attention_mask"].to(device)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = body(input_ids=enc["input_ids"].to(device), attention_mask=mask, position_ids=positions,
                       output_hidden_states=True, use_cache=False)
        rows = torch.arange(mask.shape[0], device=mask.device)
        last = last_real_index(mask)
        yield {layer: out.hidden_states[layer][rows, last] for layer in layers}
