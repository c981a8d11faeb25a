"""Load a causal LM (optionally with a PEFT/LoRA adapter) and its tokenizer, as lm-eval does."""

from __future__ import annotations

import logging
from pathlib import Path

from lm_forget.errors import ConfigError
from lm_forget.formats import ADAPTER_CONFIG_FILE

log = logging.getLogger(__name__)


def pick_device(device: str | None) -> str:
    """``device`` or the best available one (cuda, then mps, then cpu)."""
    import torch

    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_model(model: str, *, peft: str | None = None, device: str | None = None, dtype: str = "auto"):
    """``(model, tokenizer)`` in eval mode; the tokenizer comes from ``model`` (as with lm-eval's
    ``pretrained=BASE,peft=ADAPTER``) and gets a pad token when it has none."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(device)
    torch_dtype = getattr(torch, dtype) if dtype != "auto" else "auto"
    try:
        lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype)
        tok = AutoTokenizer.from_pretrained(model)
    except OSError as exc:
        raise ConfigError(f"cannot load model {model!r}: {exc}") from None
    if peft:
        from peft import PeftModel

        if not (Path(peft) / ADAPTER_CONFIG_FILE).is_file() and Path(peft).exists():
            raise ConfigError(f"{peft} has no adapter_config.json: pass the folder a PEFT adapter was saved to")
        try:
            lm = PeftModel.from_pretrained(lm, peft)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load PEFT adapter {peft!r} onto {model!r}: {exc}") from None
    if tok.pad_token is None:  # batching needs a pad id; its value never reaches a real position
        tok.pad_token = tok.eos_token or tok.unk_token
    lm.to(device).eval()
    log.info("loaded %s%s on %s", model, f" + adapter {peft}" if peft else "", device)
    return lm, tok
