"""Which model a step evaluates, and a pool that keeps one base model loaded while adapters swap.

A LoRA forget adapter continues the fine-tune adapter, so every adapter of a study loads on the same
base. Loading the base once and swapping adapters (PEFT ``load_adapter``/``set_adapter``) is what makes
a cross-task matrix affordable: per cell only the adapter's few MB move, not the base's GBs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lm_forget.modeling import ModelRef, is_adapter_dir, load_model, load_tokenizer

log = logging.getLogger(__name__)


def trained_ref(base: ModelRef, output_dir: Path) -> ModelRef:
    """The model a train step produced: an adapter on the base, or full weights (``--no-lora``)."""
    if is_adapter_dir(output_dir):
        return base.with_adapter(str(output_dir))
    # full weights: the step saved the tokenizer beside them (from ``base.tokenizer`` when one was named)
    return ModelRef(str(output_dir), None, base.tokenizer or None, base.dtype)


class ModelPool:
    """Holds at most one loaded base model; adapters on it are loaded once and switched by name.

    Args:
        device: where to put the model (``cpu``, ``cuda``...).
        swap: when False, every request reloads from disk (the baseline the benchmark compares to).
    """

    max_adapters = 4

    def __init__(self, device: str = "cpu", swap: bool = True) -> None:
        self.device = device
        self.swap = swap
        self._key: ModelRef | None = None  # the loaded base
        self._model: Any = None
        self._tokenizer: Any = None
        self._adapters: dict[str, str] = {}  # adapter folder -> adapter name in the PeftModel (load order)
        self._counter = 0
        self.loads = 0  # base loads, for the benchmark and tests

    def _load_base(self, ref: ModelRef) -> None:
        log.info("loading base model %s", ref.name_or_path)
        self.close()
        self._model = load_model(ref.with_adapter(None), device=self.device)
        self._tokenizer = load_tokenizer(ref)
        self._key = ref.with_adapter(None)
        self.loads += 1

    @contextmanager
    def use(self, ref: ModelRef) -> Iterator[tuple[Any, Any]]:
        """Yield ``(model, tokenizer)`` for ``ref``, reusing the loaded base where possible."""
        if not self.swap or self._key != ref.with_adapter(None):
            self._load_base(ref)
        model = self._model
        if ref.adapter is None:
            if self._adapters:
                with model.disable_adapter():
                    yield model, self._tokenizer
            else:
                yield model, self._tokenizer
            return
        from peft import PeftModel

        name = self._adapters.get(ref.adapter)
        if name is None:
            name = f"a{self._counter}"
            self._counter += 1
            if isinstance(model, PeftModel):
                self._evict(model)
                model.load_adapter(ref.adapter, adapter_name=name, is_trainable=False)
            else:
                model = PeftModel.from_pretrained(model, ref.adapter, adapter_name=name, is_trainable=False)
                model.to(self.device).eval()
                self._model = model
            self._adapters[ref.adapter] = name
        model.set_adapter(name)
        yield model, self._tokenizer

    def _evict(self, model: Any) -> None:
        # A matrix evaluates each adapter once: keep a few, so memory stays flat however many cells run.
        while len(self._adapters) >= self.max_adapters:
            folder, name = next(iter(self._adapters.items()))
            if name == model.active_adapter:
                model.set_adapter(list(self._adapters.values())[-1])
            model.delete_adapter(name)
            del self._adapters[folder]

    def close(self) -> None:
        """Drop the loaded model (frees its memory)."""
        had_model = self._model is not None
        self._model = self._tokenizer = self._key = None
        self._adapters = {}
        if had_model:
            import gc

            import torch

            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
