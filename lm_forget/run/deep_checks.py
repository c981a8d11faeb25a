"""Checks of the stages ``mia`` and ``eval_quantized`` (run with the rest of the config, before any work)."""

from __future__ import annotations

from lm_forget.errors import ConfigError
from lm_forget.run.schema import RunConfig


def check_deep(config: RunConfig) -> None:
    """The hf backend for both stages, bits each listed once, and the quantizer installed."""
    stages = [s for s in ("mia", "eval_quantized") if s in config.stages]
    if stages and config.eval.backend != "hf":
        raise ConfigError(f"stages: {', '.join(stages)} score the model in this process (transformers); set "
                          f"eval.backend: hf or drop {' and '.join(stages)}.")
    if "eval_quantized" not in config.stages:
        return
    from lm_forget.run.quantized import BITS, require_quantizer

    bits = list(config.quantize.bits)
    if not bits or len(set(bits)) != len(bits) or any(b not in BITS for b in bits):
        raise ConfigError(f"quantize.bits: {bits}; list each of {', '.join(map(str, BITS))} at most once.")
    require_quantizer(config.quantize.quantizer)
