"""Which model a step evaluates, and a pool that keeps one base model loaded while adapters swap.

A LoRA forget adapter continues the fine-tune adapter, so every adapter of a study loads on the same
base. Loading the base once and swapping adapters (PEFT ``load_adapter``/``set_adapter``) is what makes
a cross-task matrix affordable: per cell only the adapter's few MB move, not the base's GBs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_forget.formats import ADAPTER_CONFIG_FILE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRef:
    """A model to evaluate: a base (id or folder) and optionally a LoRA adapter folder on it."""

    base: str
    adapter: str | None = None
    revision: str | None = None
    tokenizer: str | None = None
    dtype: str = "auto"

    def model_args(self) -> str:
        """The equivalent lm-eval ``--model_args`` (recorded in results, and used by non-swapping backends)."""
        args = [f"pretrained={self.base}"]
        if self.revision:
            args.append(f"revision={self.revision}")
        if self.adapter:
            args.append(f"peft={self.adapter}")
        if self.tokenizer:
            args.append(f"tokenizer={self.tokenizer}")
        if self.dtype != "auto":
            args.append(f"dtype={self.dtype}")
        return ",".join(args)


def is_adapter_dir(path: str | Path) -> bool:
    """True for a PEFT adapter folder (as the trainer writes with LoRA)."""
    return (Path(path) / ADAPTER_CONFIG_FILE).is_file()


def trained_ref(base: ModelRef, output_dir: Path) -> ModelRef:
    """The model a train step produced: an adapter on the base, or full weights (``--no-lora``)."""
    if is_adapter_dir(output_dir):
        return ModelRef(base.base, str(output_dir), base.revision, base.tokenizer, base.dtype)
    return ModelRef(str(output_dir), None, None, base.tokenizer or None, base.dtype)


def _torch_dtype(name: str):
    import torch

    return "auto" if name == "auto" else getattr(torch, name)


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
        self._key: tuple[str, str | None] | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._adapters: dict[str, str] = {}  # adapter folder -> adapter name in the PeftModel (load order)
        self._counter = 0
        self.loads = 0  # base loads, for the benchmark and tests

    def _load_base(self, ref: ModelRef) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("loading base model %s", ref.base)
        self.close()
        model = AutoModelForCausalLM.from_pretrained(ref.base, revision=ref.revision, dtype=_torch_dtype(ref.dtype))
        model.to(self.device).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(ref.tokenizer or ref.base, revision=ref.revision)
        self._model = model
        self._key = (ref.base, ref.revision)
        self.loads += 1

    @contextmanager
    def use(self, ref: ModelRef) -> Iterator[tuple[Any, Any]]:
        """Yield ``(model, tokenizer)`` for ``ref``, reusing the loaded base where possible."""
        if not self.swap or self._key != (ref.base, ref.revision):
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
