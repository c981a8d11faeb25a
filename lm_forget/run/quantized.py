"""A model with its LoRA adapter merged and its weights quantized, for lm-eval: the quantization attack.

Zhang et al. (ICLR 2025, arXiv 2410.16454) found that 4-bit quantization of an unlearned model restores much
of the forgotten knowledge: unlearning moves weights by less than a quantization step. Here the forgotten
model's adapter is merged into the base (PEFT ``merge_and_unload``), saved, and loaded back through transformers'
``quantization_config``: bitsandbytes ``load_in_8bit`` (LLM.int8) for 8 bits and ``load_in_4bit`` with nf4 for
4 bits, both of which run on CPU with bitsandbytes >= 0.50 (``pip install 'lm-forget[quantize]'``).

One workaround, for bitsandbytes' CPU 4-bit path: on CPUs with AVX512-BF16 ``Linear4bit.forward`` repacks its
weight for a fused kernel that asserts ``out_features % 32 == 0`` and ``in_features % blocksize == 0`` (the
tiny stories260K's 172-wide MLP fails it). Layers whose shape that kernel cannot take are kept on bitsandbytes'
generic dequantize-and-matmul path (``support_avx512bf16_for_cpu = False``): the same nf4 weights, scored the
same; larger models (SmolLM2's 576/1536) take the fused path.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lm_forget.errors import ConfigError
from lm_forget.modeling import ModelRef, load_model, load_tokenizer, torch_dtype
from lm_forget.run.models import ModelPool, free_memory

log = logging.getLogger(__name__)

BITS = (8, 4)
QUANTIZERS = ("bitsandbytes",)
#: bitsandbytes' fused CPU 4-bit kernel: output rows come in blocks of 32 (``_convert_weight_packed_for_cpu``)
_CPU_PACK_ROWS = 32


def require_quantizer(quantizer: str = "bitsandbytes") -> None:
    """A clear error when the quantizer is not installed (checked with the config, before any work)."""
    import importlib.util

    if quantizer not in QUANTIZERS:
        raise ConfigError(f"quantize.quantizer: {quantizer!r} is not one of {', '.join(QUANTIZERS)}.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("stage eval_quantized needs bitsandbytes (>= 0.50 runs 8- and 4-bit on CPU): "
                          "pip install 'lm-forget[quantize]'.")


def quantization_config(bits: int) -> Any:
    """transformers' ``BitsAndBytesConfig`` for ``bits``: LLM.int8 (8) or nf4 with float32 compute (4)."""
    import torch
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    if bits == 4:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    raise ConfigError(f"quantize.bits: {bits} is not one of {', '.join(map(str, BITS))}.")


def merge_to(ref: ModelRef, folder: Path) -> None:
    """Save ``ref`` (its adapter merged into the base, PEFT ``merge_and_unload``) and its tokenizer to ``folder``."""
    model = load_model(ref)
    if ref.adapter:
        model = model.merge_and_unload()
    model.save_pretrained(folder)
    load_tokenizer(ref).save_pretrained(folder)


def _keep_generic_path(model: Any) -> int:
    """Layers the fused CPU 4-bit kernel cannot take stay on the generic path (module docstring); their count."""
    from bitsandbytes.nn import Linear4bit

    kept = 0
    for module in model.modules():
        if isinstance(module, Linear4bit):
            blocksize = getattr(module.weight.quant_state, "blocksize", 64)
            if module.out_features % _CPU_PACK_ROWS or module.in_features % blocksize:
                module.support_avx512bf16_for_cpu = False
                kept += 1
    return kept


def load_quantized(folder: Path, bits: int, device: str = "cpu", dtype: Any = None) -> Any:
    """The model saved in ``folder``, loaded with its weights quantized to ``bits`` (transformers + bitsandbytes)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quantization_config(bits),
                                                 device_map=device, dtype=dtype or torch.float32)
    if bits == 4 and device == "cpu":
        kept = _keep_generic_path(model)
        if kept:
            log.info("%d 4-bit layers of %s kept on bitsandbytes' generic CPU path (shape)", kept, folder)
    model.eval()
    return model


class QuantizedPool(ModelPool):
    """A pool holding one merged, quantized model; ``run.evaluate.evaluate_model`` scores it like any other.

    Use as a context manager: the merged full-precision copy lives in a temp folder under ``workdir`` and is
    deleted on exit.
    """

    def __init__(self, ref: ModelRef, bits: int, device: str = "cpu", workdir: Path | None = None) -> None:
        super().__init__(device=device)
        self.ref, self.bits, self.workdir = ref, bits, workdir
        self._folder: Path | None = None

    @property
    def description(self) -> str:
        return {8: "bitsandbytes int8 (LLM.int8)", 4: "bitsandbytes nf4"}[self.bits]

    def __enter__(self) -> QuantizedPool:
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
        self._folder = Path(tempfile.mkdtemp(prefix=".merged-", dir=self.workdir))
        merge_to(self.ref, self._folder)
        dtype = None if self.ref.dtype in (None, "auto") else torch_dtype(self.ref.dtype)
        self._model = load_quantized(self._folder, self.bits, self.device, dtype)
        self._tokenizer = load_tokenizer(ModelRef(str(self._folder)))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    @contextmanager
    def use(self, ref: ModelRef) -> Iterator[tuple[Any, Any]]:
        if ref != self.ref or self._model is None:
            raise ValueError(f"this pool holds {self.ref} quantized to {self.bits} bits, not {ref}")
        yield self._model, self._tokenizer

    def close(self) -> None:
        had = self._model is not None
        self._model = self._tokenizer = None
        if had:
            free_memory()
