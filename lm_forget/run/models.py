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
        device_map: load the base with this transformers ``device_map`` instead (``auto``: accelerate spreads
            a model larger than one device over every visible GPU); adapters are swapped on it all the same.
    """

    max_adapters = 4

    def __init__(self, device: str = "cpu", swap: bool = True, device_map: str | None = None) -> None:
        self.device = device
        self.swap = swap
        self.device_map = device_map
        self._key: ModelRef | None = None  # the loaded base
        self._model: Any = None
        self._tokenizer: Any = None
        self._adapters: dict[str, str] = {}  # adapter folder -> adapter name in the PeftModel (load order)
        self._counter = 0
        self.loads = 0  # base loads, for the benchmark and tests

    def _load_base(self, ref: ModelRef) -> None:
        log.info("loading base model %s", ref.name_or_path)
        self.close()
        if self.device_map is not None:  # placed by accelerate's dispatch: never moved as a whole afterwards
            self._model = load_model(ref.with_adapter(None), device_map=self.device_map)
        else:
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
                if self.device_map is None:  # a dispatched base: PEFT puts each adapter beside its layer
                    model.to(self.device)
                model.eval()
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
            free_memory()


def free_memory() -> None:
    """Collect a dropped model and hand its CUDA cache back (before a training step loads its own)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def study_lora_ranks(config: Any) -> list[int]:
    """The LoRA ranks a study's fine-tune and forget sections set (``lora_r``): what a vLLM engine is sized for
    (relearning continues the forget adapter, at its rank; the relearn control trains a new one at relearn's)."""
    from lm_forget.train.peft_settings import PeftSettings

    default = PeftSettings.__dataclass_fields__["lora_r"].default
    sections = [config.finetune, config.forget]
    if "relearn" in config.stages and config.relearn.control and config.forget.use_lora:
        sections.append(config.relearn)  # its use_lora follows forget's
    return [int(section.model_dump().get("lora_r") or default)
            for section in sections if section.use_lora is not False]


def eval_pool(config: Any) -> Any:
    """The pool evaluations of a study share: hf (one base, adapters swapped) or vLLM (one engine)."""
    settings = config.eval
    if settings.backend == "vllm":
        from lm_forget.run.vllm_pool import VLLMPool

        return VLLMPool(batch_size=settings.batch_size, model_args=settings.model_args,
                        ranks=study_lora_ranks(config))
    return ModelPool(device=config.device, swap=settings.swap_adapters, device_map=settings.device_map)
