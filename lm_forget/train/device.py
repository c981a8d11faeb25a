"""``resolve_precision``: one decision of device, mixed precision, model dtype and checkpointing.

``lm-forget train``, the study runner's train steps and ``lm-forget features`` all ask this function, so a
laptop without a GPU runs every command unchanged (float32, no activation checkpointing, ``use_cpu``)
and a GPU gets bf16 only where it supports it. A value the user set explicitly (``--bf16 true``,
``--gradient_checkpointing true``, ``--dtype bfloat16``) is never overridden: pass it in and it comes back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Precision:
    """What to run on and how.

    Attributes:
        device: ``cuda``, ``mps`` or ``cpu`` (the accelerator found, or ``cpu`` when asked for).
        bf16: bf16 mixed precision (Trainer's ``--bf16``).
        fp16: fp16 mixed precision (Trainer's ``--fp16``).
        use_cpu: Trainer's ``--use_cpu`` (True when no accelerator is used).
        activation_checkpointing: recompute activations in the backward pass (saves memory, costs time).
        dtype: dtype to load the model weights in (``float32`` on CPU; ``auto`` = the checkpoint's own).
    """

    device: str
    bf16: bool
    fp16: bool
    use_cpu: bool
    activation_checkpointing: bool
    dtype: str


def accelerator() -> str | None:
    """``cuda`` or ``mps`` when torch can use one, else None."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return None


def bf16_supported(device: str) -> bool:
    """True when ``device`` runs bf16 natively (CUDA: ``torch.cuda.is_bf16_supported()``; CPU/MPS: no)."""
    import torch

    return device == "cuda" and bool(torch.cuda.is_bf16_supported())


def resolve_precision(*, bf16: bool | None = None, fp16: bool | None = None,
                      activation_checkpointing: bool | None = None, use_cpu: bool | None = None,
                      device: str | None = None, dtype: str | None = None) -> Precision:
    """Fill in what the user left unset (None) from the machine; explicit values are returned unchanged.

    - device: ``device``, else ``cpu`` when ``use_cpu``, else the accelerator, else ``cpu``;
    - bf16: on a device that supports it (and not fp16); fp16: only when asked;
    - activation checkpointing: on CUDA (memory for 7B models), off elsewhere (on CPU it only costs time);
    - use_cpu: when the device is the CPU;
    - dtype: ``float32`` on CPU (checkpoints stored in fp16/bf16 are slow or emulated there), else ``auto``.
    """
    if device is None or device == "auto":
        device = "cpu" if use_cpu else (accelerator() or "cpu")
    kind = device.split(":")[0]
    on_cpu = kind == "cpu"
    if fp16 is None:
        fp16 = False
    if bf16 is None:
        bf16 = not fp16 and not on_cpu and bf16_supported(kind)
    if activation_checkpointing is None:
        activation_checkpointing = kind == "cuda"
    use_cpu = bool(use_cpu) or on_cpu  # False on a machine without an accelerator would only fail later
    if dtype is None or dtype == "auto":
        dtype = "float32" if on_cpu else "auto"
    precision = Precision(device=device, bf16=bool(bf16), fp16=bool(fp16), use_cpu=bool(use_cpu),
                          activation_checkpointing=bool(activation_checkpointing), dtype=dtype)
    log.debug("precision: %s", precision)
    return precision
