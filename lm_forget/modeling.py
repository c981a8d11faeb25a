"""One reference to a model, passed whole to every step that loads one (train, evaluate, features).

``ModelRef`` is the run config's ``model:`` section and what each step receives; the loaders that turn
it into a transformers model and tokenizer live beside it, so revision, tokenizer and dtype cannot be
dropped on the way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lm_forget.errors import ConfigError, first_line
from lm_forget.formats import ADAPTER_CONFIG_FILE as ADAPTER_CONFIG

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRef:
    """A pretrained model, optionally with a PEFT adapter on it.

    Attributes:
        name_or_path: Hub id or local folder of the base model.
        revision: Hub revision (branch, tag or commit) of the base; pin it for reproducible studies.
        tokenizer: tokenizer id or folder when it differs from the model's (loaded without ``revision``).
        dtype: torch dtype for training and evaluation (``auto``, ``bfloat16``, ``float32``...).
        adapter: a PEFT adapter folder (or Hub id) on the base; None: the base alone.
    """

    name_or_path: str = ""
    revision: str | None = None
    tokenizer: str | None = None
    dtype: str = "auto"
    adapter: str | None = None

    def tokenizer_source(self) -> tuple[str, str | None]:
        """``(id or folder, revision)`` the tokenizer loads from: the model's own at its revision, or ``tokenizer``."""
        return (self.tokenizer, None) if self.tokenizer else (self.name_or_path, self.revision)

    def with_adapter(self, adapter: str | None) -> ModelRef:
        return replace(self, adapter=adapter)

    def model_args(self) -> str:
        """The equivalent lm-eval ``--model_args`` (recorded in results, and used by non-swapping backends)."""
        args = [f"pretrained={self.name_or_path}"]
        if self.revision:
            args.append(f"revision={self.revision}")
        if self.adapter:
            args.append(f"peft={self.adapter}")
        if self.tokenizer:
            args.append(f"tokenizer={self.tokenizer}")
        if self.dtype != "auto":
            args.append(f"dtype={self.dtype}")
        return ",".join(args)

    @classmethod
    def from_forget_config(cls, config: Any) -> ModelRef:
        """The base model of a ``ForgetConfig`` run (``model``, ``model_revision``, ``tokenizer``)."""
        return cls(str(config.model), config.model_revision, config.tokenizer, "auto")


# ------------------------------------------------------------------ the one loader


def is_adapter_dir(path: str | Path) -> bool:
    """True for a PEFT adapter folder (as the trainer writes with LoRA)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def _check_folder(source: str, what: str, flag: str) -> None:
    if source.startswith(("/", ".", "~")) and not Path(source).expanduser().is_dir():
        raise ConfigError(f"{what} folder {source} does not exist; pass an existing folder or a Hub id to {flag}")


def load_tokenizer(ref: ModelRef, *, trust_remote_code: bool = False, pad: bool = False) -> Any:
    """The tokenizer of ``ref``: ``ref.tokenizer`` when set, else the model's own at ``ref.revision``.

    ``pad=True`` gives it a pad token when it has none (batching needs a pad id; its value never reaches a
    scored position).
    """
    from transformers import AutoTokenizer

    source, revision = ref.tokenizer_source()
    _check_folder(source, "tokenizer" if ref.tokenizer else "base model", "--model")
    try:
        tok = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
    except Exception as exc:  # OSError, HFValidationError, a corrupt tokenizer.json (tokenizers' Exception)
        what = f"tokenizer {source!r}" if ref.tokenizer else f"the tokenizer of base model {source!r}"
        raise ConfigError(
            f"cannot load {what}: {first_line(exc)}. Pass a Hub id or a local folder with config.json and "
            "tokenizer files to --model (or name the tokenizer separately)"
        ) from exc
    if pad and tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def torch_dtype(name: Any) -> Any:
    """``"auto"`` stays; ``"float32"`` -> ``torch.float32``; a torch dtype passes through."""
    import torch

    if not isinstance(name, str) or name == "auto":
        return name
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise ConfigError(f"dtype {name!r} is not a torch dtype; use auto, float32, bfloat16 or float16")
    return value


def load_model(ref: ModelRef, *, device: str | None = None, dtype: Any = None, trainable: bool = False,
               trust_remote_code: bool = False, adapter_flag: str = "adapter", **init_kwargs: Any) -> Any:
    """``ref``'s base model at its revision, with ``ref.adapter`` on it when set.

    ``dtype`` overrides ``ref.dtype`` (the trainer resolves ``auto`` per device). ``trainable`` keeps the
    adapter trainable and the model in train mode (training); otherwise the model is put in eval mode.
    ``device`` moves it there (None: leave it where ``from_pretrained`` put it). ``init_kwargs`` go to
    ``from_pretrained`` (``attn_implementation``, ``device_map``...). ``adapter_flag`` names the setting the
    adapter came from in error messages (``--init_adapter``, ``--peft``).
    """
    from transformers import AutoModelForCausalLM

    source = ref.name_or_path
    _check_folder(source, "base model", "--model")
    kwargs = dict(init_kwargs)
    kwargs["dtype"] = torch_dtype(dtype if dtype is not None else ref.dtype)
    if ref.revision:
        kwargs["revision"] = ref.revision
    try:
        model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=trust_remote_code, **kwargs)
    except Exception as exc:  # OSError, HFValidationError, a corrupt or truncated weights file (SafetensorError)
        raise ConfigError(
            f"cannot load model {source!r}: {type(exc).__name__}: {first_line(exc)}. Pass a Hub id or a local "
            "model folder with config.json and intact weights (re-download or re-save a corrupt file)"
        ) from exc
    if ref.adapter:
        model = _with_adapter(model, ref, trainable=trainable, flag=adapter_flag)
    if device:
        model.to(device)
    if not trainable:
        model.eval()
    log.info("loaded %s%s%s", source, f"@{ref.revision}" if ref.revision else "",
             f" + adapter {ref.adapter}" if ref.adapter else "")
    return model


def _with_adapter(model: Any, ref: ModelRef, *, trainable: bool, flag: str) -> Any:
    from peft import PeftModel

    adapter = str(ref.adapter)
    if Path(adapter).exists() and not is_adapter_dir(adapter):
        raise ConfigError(f"{flag} {adapter}: no {ADAPTER_CONFIG} there; pass the folder a PEFT adapter was saved to")
    try:
        return PeftModel.from_pretrained(model, adapter, is_trainable=trainable)
    except Exception as exc:  # shapes that do not fit the base, a corrupt adapter file
        raise ConfigError(
            f"{flag} {adapter!r} does not load on base model {ref.name_or_path!r}: {type(exc).__name__}: "
            f"{_mismatch_line(exc)}. Pass the adapter trained on this {'--model' if flag.startswith('--') else 'base'} "
            "(the previous stage's output folder)"
        ) from exc


def _mismatch_line(exc: BaseException) -> str:
    """torch's 'size mismatch for <param>: ...' line (its first line only says 'Error(s) in loading')."""
    lines = [line.strip() for line in str(exc).splitlines()]
    return next((line for line in lines if line.startswith("size mismatch")), first_line(exc))


def load_for_inference(ref: ModelRef, *, device: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in eval mode on ``device``, the tokenizer with a pad token (features, probes)."""
    return load_model(ref, device=device, dtype=dtype, adapter_flag="--peft"), load_tokenizer(ref, pad=True)
