"""The forget trainer: finetune / forget (random labels) / flip stages on TRL's SFTTrainer + PEFT LoRA.

Public API: ``lm_forget.train.api.train(config) -> TrainResult`` with ``config`` a
``lm_forget.train.config.ForgetConfig``; the package itself is callable, so ``lm_forget.train(config)`` is the
same call (the notebook API's name: ``lm_forget.train`` must stay this package, which Python binds to that
name whenever a submodule is imported). Importing this package is cheap; the submodules import
torch/transformers/trl.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lm_forget.train.api import TrainResult
    from lm_forget.train.config import ForgetConfig


class _CallableModule(types.ModuleType):
    def __call__(self, config: ForgetConfig, *, docs: Sequence[Mapping[str, Any]] | None = None,
                 callbacks: Sequence[Any] = ()) -> TrainResult:
        """Run one training stage as ``config`` says (:func:`lm_forget.train.api.train`); returns its
        :class:`~lm_forget.train.api.TrainResult` (``output_dir``, ``metrics``, ``global_step``, ...)."""
        from lm_forget.train.api import train

        return train(config, docs=docs, callbacks=callbacks)


sys.modules[__name__].__class__ = _CallableModule
