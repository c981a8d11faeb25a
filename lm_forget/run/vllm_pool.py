"""One vLLM engine for every adapter of a study (``eval.backend: vllm``).

lm-eval's ``VLLM`` model builds one engine per instance and serves the single adapter named by
``lora_local_path``; through ``lm_eval --model vllm`` a 21x21 matrix would start 441 engines, each loading the
base. Here one lm-eval ``VLLM`` instance is built per base model, with LoRA enabled and sized from the study's
adapters (``max_lora_rank``: the largest rank, rounded up to a rank vLLM accepts; ``max_loras``: the adapters
kept resident), prefix caching on (the two choices of a doc share their context, so the context's KV cache is
computed once), and each evaluation points the instance's ``lora_request`` at its adapter. An adapter of a
higher rank than the running engine was sized for rebuilds it (logged). Full-weight models (``use_lora: false``)
are separate models: one engine each, built when first used.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lm_forget.errors import ConfigError
from lm_forget.modeling import ModelRef

log = logging.getLogger(__name__)

#: LoRA ranks a vLLM engine can be sized for (vllm.config.LoRAConfig's allowed max_lora_rank values)
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def adapter_rank(folder: str | Path) -> int:
    """The LoRA rank of a PEFT adapter folder (its ``adapter_config.json``; the largest per-module rank)."""
    path = Path(folder) / "adapter_config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the adapter's config ({exc}); is {folder} a PEFT adapter?") from None
    ranks = [int(cfg.get("r", 0)), *(int(r) for r in (cfg.get("rank_pattern") or {}).values())]
    return max(ranks)


def engine_lora_rank(ranks: list[int]) -> int:
    """The smallest vLLM-accepted ``max_lora_rank`` that holds every rank in ``ranks``."""
    need = max(ranks, default=VLLM_LORA_RANKS[0])
    for allowed in VLLM_LORA_RANKS:
        if allowed >= need:
            return allowed
    raise ConfigError(f"LoRA rank {need} is above the largest rank vLLM serves ({VLLM_LORA_RANKS[-1]}); evaluate "
                      "with eval.backend: hf, or train with a smaller lora_r.")


def engine_args(ref: ModelRef, *, lora_rank: int | None, max_loras: int, batch_size: int | str,
                extra: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of lm-eval's ``VLLM`` for the base of ``ref`` (``lora_rank`` None: no LoRA).

    ``extra`` (``eval.model_args``) wins over every default here, as on lm-eval's command line."""
    args: dict[str, Any] = {"pretrained": ref.name_or_path, "batch_size": batch_size, "enable_prefix_caching": True}
    if ref.revision:
        args["revision"] = ref.revision
    if ref.tokenizer:
        args["tokenizer"] = ref.tokenizer
    if ref.dtype and ref.dtype != "auto":
        args["dtype"] = ref.dtype
    if lora_rank is not None:
        # lm-eval enables LoRA when it is given an adapter path; the first adapter opens the engine, every
        # later one is a new LoRARequest on it (max_loras of them stay resident on the GPU)
        args.update({"lora_local_path": ref.adapter, "max_lora_rank": lora_rank, "max_loras": max_loras})
    return {**args, **extra}


def _lm_eval_vllm(**kwargs: Any) -> Any:
    from lm_eval.models.vllm_causallms import VLLM

    return VLLM(**kwargs)


def _lora_request(name: str, lora_id: int, path: str) -> Any:
    from vllm.lora.request import LoRARequest

    return LoRARequest(name, lora_id, path)


class VLLMPool:
    """Holds one lm-eval ``VLLM`` instance (one engine) and points it at each adapter in turn.

    Args:
        batch_size: lm-eval batch size.
        model_args: ``eval.model_args`` (``tensor_parallel_size``, ``gpu_memory_utilization``...).
        ranks: LoRA ranks the study's training sections will produce (the engine is sized for the largest
            of these and of the adapter it opens with, so later adapters fit without a rebuild).
        factory / lora_request: build the engine and a LoRA request (lm-eval's ``VLLM`` and vLLM's
            ``LoRARequest``; replaceable so the argument construction is testable without a GPU).
    """

    max_loras = 4

    def __init__(self, *, batch_size: int | str = "auto", model_args: dict[str, Any] | None = None,
                 ranks: list[int] | None = None, factory: Callable[..., Any] = _lm_eval_vllm,
                 lora_request: Callable[[str, int, str], Any] = _lora_request) -> None:
        self.batch_size = batch_size
        self.model_args = dict(model_args or {})
        self.ranks = list(ranks or [])
        self._factory, self._lora_request = factory, lora_request
        self._lm: Any = None
        self._key: tuple[ModelRef, int | None] | None = None  # (base, engine's max_lora_rank)
        self._ids: dict[str, int] = {}  # adapter folder -> LoRA id on this engine
        self.engines = 0  # engines built, for tests and logs

    def _open(self, ref: ModelRef, lora_rank: int | None) -> None:
        self.close()
        args = engine_args(ref, lora_rank=lora_rank, max_loras=self.max_loras, batch_size=self.batch_size,
                           extra=self.model_args)
        log.info("starting a vLLM engine for %s (max_lora_rank=%s)", ref.name_or_path, lora_rank)
        self._lm = self._factory(**args)
        self._key = (ref.with_adapter(None), lora_rank)
        self.engines += 1

    @contextmanager
    def use(self, ref: ModelRef) -> Iterator[Any]:
        """Yield the lm-eval ``VLLM`` instance, its ``lora_request`` set to ``ref``'s adapter (None: the base)."""
        base = ref.with_adapter(None)
        if ref.adapter is None:
            if self._key is None or self._key[0] != base:
                self._open(ref, None)
            self._lm.lora_request = None
            yield self._lm
            return
        rank = adapter_rank(ref.adapter)
        if self._key is None or self._key[0] != base or self._key[1] is None or self._key[1] < rank:
            if self._key is not None and self._key[0] == base:
                log.info("adapter %s has rank %d, above the engine's %s: restarting it", ref.adapter, rank,
                         self._key[1])
            self._open(ref, engine_lora_rank([rank, *self.ranks]))
        lora_id = self._ids.setdefault(ref.adapter, len(self._ids) + 1)  # vLLM ids: unique per adapter, from 1
        self._lm.lora_request = self._lora_request(f"a{lora_id}", lora_id, ref.adapter)
        yield self._lm

    def close(self) -> None:
        """Shut the engine down (frees its GPU memory before a training step needs it)."""
        if self._lm is not None:
            from lm_forget.run.models import free_memory

            self._lm = None
            free_memory()
        self._key = None
        self._ids = {}
