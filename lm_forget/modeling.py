"""One reference to a model, passed whole to every step that loads one (train, evaluate, features).

``ModelRef`` is the run config's ``model:`` section and what each step receives; the loaders that turn
it into a transformers model and tokenizer live beside it, so revision, tokenizer, dtype and GGUF file
cannot be dropped on the way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lm_forget.errors import ConfigError, first_line
from lm_forget.formats import ADAPTER_CONFIG_FILE as ADAPTER_CONFIG

log = logging.getLogger(__name__)

#: what to install to load a GGUF base (pyproject's ``gguf`` extra)
GGUF_INSTALL = "pip install 'lm-forget[gguf]' (or pip install gguf)"


@dataclass(frozen=True)
class ModelRef:
    """A pretrained model, optionally with a PEFT adapter on it.

    Attributes:
        name_or_path: Hub id or local folder of the base model.
        revision: Hub revision (branch, tag or commit) of the base; pin it for reproducible studies.
        tokenizer: tokenizer id or folder when it differs from the model's (loaded without ``revision``).
        dtype: torch dtype for training and evaluation (``auto``, ``bfloat16``, ``float32``...).
        adapter: a PEFT adapter folder (or Hub id) on the base; None: the base alone.
        gguf_file: a GGUF file inside ``name_or_path`` (folder or Hub repo): transformers dequantizes it to
            float on load (model and tokenizer), as ``from_pretrained(name_or_path, gguf_file=...)`` does.
    """

    name_or_path: str = ""
    revision: str | None = None
    tokenizer: str | None = None
    dtype: str = "auto"
    adapter: str | None = None
    gguf_file: str | None = None

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
        if self.gguf_file:
            args.append(f"gguf_file={self.gguf_file}")
        return ",".join(args)

    @classmethod
    def from_forget_config(cls, config: Any) -> ModelRef:
        """The base model of a ``ForgetConfig`` run (``model``, ``model_revision``, ``tokenizer``, ``gguf_file``)."""
        return cls(str(config.model), config.model_revision, config.tokenizer, "auto",
                   gguf_file=getattr(config, "gguf_file", None))


# ------------------------------------------------------------------ the one loader


def is_adapter_dir(path: str | Path) -> bool:
    """True for a PEFT adapter folder (as the trainer writes with LoRA)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def _check_folder(source: str, what: str, flag: str) -> None:
    if source.startswith(("/", ".", "~")) and not Path(source).expanduser().is_dir():
        if source.endswith(".gguf") and Path(source).expanduser().is_file():
            path = Path(source).expanduser()
            raise ConfigError(f"{source} is a GGUF file: pass its folder to {flag} and its name as gguf_file "
                              f"(--model {path.parent} --gguf_file {path.name})")
        raise ConfigError(f"{what} folder {source} does not exist; pass an existing folder or a Hub id to {flag}")


def check_gguf_file(ref: ModelRef) -> None:
    """A ``gguf_file`` in a local folder is there, and ``gguf`` (which transformers reads it with) is installed."""
    if not ref.gguf_file:
        return
    folder = Path(ref.name_or_path).expanduser()
    if folder.is_dir() and not (folder / ref.gguf_file).is_file():
        found = sorted(p.name for p in folder.glob("*.gguf"))
        raise ConfigError(f"gguf_file {ref.gguf_file!r} is not in {folder}; "
                          + (f"GGUF files there: {', '.join(found)}" if found else "that folder holds no .gguf file"))
    from transformers.utils import is_gguf_available

    if not is_gguf_available():
        raise ConfigError(f"gguf_file {ref.gguf_file!r} needs the gguf package to load; {GGUF_INSTALL}")


def load_tokenizer(ref: ModelRef, *, trust_remote_code: bool = False, pad: bool = False) -> Any:
    """The tokenizer of ``ref``: ``ref.tokenizer`` when set, else the model's own at ``ref.revision``.

    ``pad=True`` gives it a pad token when it has none (batching needs a pad id; its value never reaches a
    scored position).
    """
    from transformers import AutoTokenizer

    source, revision = ref.tokenizer_source()
    _check_folder(source, "tokenizer" if ref.tokenizer else "base model", "--model")
    kwargs: dict[str, Any] = {}
    if ref.gguf_file and not ref.tokenizer:  # the GGUF file embeds its tokenizer
        check_gguf_file(ref)
        kwargs["gguf_file"] = ref.gguf_file
    try:
        tok = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code, **kwargs)
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
    if ref.gguf_file:
        check_gguf_file(ref)
        kwargs.update(gguf_kwargs(ref.gguf_file, kwargs))
    try:
        model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=trust_remote_code, **kwargs)
    except Exception as exc:  # OSError, HFValidationError, a corrupt or truncated weights file (SafetensorError)
        raise ConfigError(
            f"cannot load model {source!r}: {type(exc).__name__}: {first_line(exc)}. Pass a Hub id or a local "
            "model folder with config.json and intact weights (re-download or re-save a corrupt file)"
        ) from exc
    if ref.gguf_file:
        _as_plain_model(model)
    if ref.adapter:
        model = _with_adapter(model, ref, trainable=trainable, flag=adapter_flag)
    if device:
        model.to(device)
    if not trainable:
        model.eval()
    log.info("loaded %s%s%s%s", source, f"@{ref.revision}" if ref.revision else "",
             f" ({ref.gguf_file}, dequantized)" if ref.gguf_file else "",
             f" + adapter {ref.adapter}" if ref.adapter else "")
    return model


def gguf_kwargs(gguf_file: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``from_pretrained`` kwargs of a GGUF base: the file, dequantized to dense float weights.

    transformers >= 5.2x may keep a GGUF's weights packed (``GgufConfig(dequantize=False)``, its default where a
    matmul kernel is installed); lm-forget always asks for the dense model, so LoRA targets plain ``nn.Linear``
    layers and full fine-tuning saves plain safetensors. Older releases always dequantize.
    """
    import inspect

    import transformers

    if "quantization_config" in kwargs:
        raise ConfigError("gguf_file and model_init_kwargs.quantization_config both set how the weights load; a GGUF "
                          "base is dequantized to float: drop model_init_kwargs.quantization_config")
    out: dict[str, Any] = {"gguf_file": gguf_file}
    config_cls = getattr(transformers, "GgufConfig", None)
    if config_cls is not None and "dequantize" in inspect.signature(config_cls).parameters:
        out["quantization_config"] = config_cls(gguf_file=gguf_file, dequantize=True)
    return out


def _as_plain_model(model: Any) -> None:
    """Drop the GGUF quantizer a dequantized model may still carry (its weights are dense float tensors).

    A model that keeps it counts as quantized: the Trainer refuses to fully fine-tune it and ``save_pretrained``
    refuses to save it. transformers' own ``remove_quantization_config`` is what its ``dequantize()`` calls.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return
    if getattr(quantizer, "packed_modules", None):  # never: gguf_kwargs asks for the dense model
        raise ConfigError("the GGUF base loaded with packed (quantized) layers; lm-forget trains and evaluates the "
                          "dequantized model: upgrade transformers (GgufConfig(dequantize=True))")
    quantizer.remove_quantization_config(model)


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
