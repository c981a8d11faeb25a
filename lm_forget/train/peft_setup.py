"""PEFT and bitsandbytes configs of a run, built the way TRL's own scripts build them.

``ForgetConfig``'s LoRA / quantization fields (``PeftSettings``) become a ``trl.ModelConfig``; TRL's
``get_peft_config`` turns it into the ``LoraConfig`` and ``get_quantization_config`` into the
``BitsAndBytesConfig`` (QLoRA: 4-bit nf4/fp4, nested quantization; or 8 bit). Defaults give exactly the
``LoraConfig`` lm-forget built by hand before (tested), so default runs train the same adapter.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lm_forget.errors import ConfigError

if TYPE_CHECKING:
    from lm_forget.train.config import ForgetConfig

logger = logging.getLogger(__name__)

#: what to install for a quantized base (pyproject's ``qlora`` extra)
BNB_INSTALL = "pip install 'lm-forget[qlora]' (or pip install 'bitsandbytes>=0.46.1')"


def target_modules(config: ForgetConfig) -> str | list[str]:
    """PEFT's ``target_modules``: the ``all-linear`` shorthand as PEFT spells it, any other names as a list.

    A list, even of one name: PEFT reads a *string* as a regex matched against the full module path, so
    ``"q_proj"`` would match no module (TRL's ``ModelConfig`` collapses a one-element list to a string).
    """
    targets = list(config.lora_target_modules)
    return "all-linear" if targets == ["all-linear"] else targets


def compute_dtype(config: ForgetConfig) -> str:
    """dtype of a quantized base's compute and of its unquantized modules: an explicit
    ``model_init_kwargs.dtype``, else the run's mixed precision (bf16 / fp16), else float32."""
    explicit = (config.model_init_kwargs or {}).get("dtype") if isinstance(config.model_init_kwargs, dict) else None
    if explicit not in (None, "auto"):
        return str(explicit).removeprefix("torch.")
    return "bfloat16" if config.bf16 else "float16" if config.fp16 else "float32"


def model_config(config: ForgetConfig) -> Any:
    """This run's ``trl.ModelConfig`` (the LoRA and quantization fields under TRL's names)."""
    from trl import ModelConfig

    model = ModelConfig(
        model_name_or_path=config.model,
        model_revision=config.model_revision or "main",
        dtype=compute_dtype(config),
        use_peft=config.use_lora,
        lora_r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        lora_target_modules=None,
        lora_modules_to_save=list(config.lora_modules_to_save) or None,
        use_rslora=config.use_rslora,
        use_dora=config.use_dora,
        load_in_4bit=config.load_in_4bit,
        load_in_8bit=config.load_in_8bit,
        bnb_4bit_quant_type=config.bnb_4bit_quant_type,
        use_bnb_nested_quant=config.use_bnb_nested_quant,
    )
    model.lora_target_modules = target_modules(config)  # set after __post_init__, which would make ["x"] "x"
    return model


def lora_config(config: ForgetConfig, model: Any) -> Any:
    """The new adapter's ``LoraConfig`` (``trl.get_peft_config``), its target modules checked on ``model``."""
    from trl import get_peft_config

    targets = target_modules(config)
    if targets != "all-linear":
        check_target_modules(model, list(targets), "--lora_target_modules")
    if config.lora_modules_to_save:
        check_target_modules(model, list(config.lora_modules_to_save), "--lora_modules_to_save")
    return get_peft_config(model_config(config))


def quantization_config(config: ForgetConfig) -> Any:
    """The base's ``BitsAndBytesConfig`` (``trl.get_quantization_config``); None without quantization."""
    if not config.quantized:
        return None
    from trl import get_quantization_config

    return get_quantization_config(model_config(config))


def kbit_device_map() -> dict[str, Any] | None:
    """Where a quantized base loads: this process's GPU (one full copy per process under DDP).

    TRL's ``get_kbit_device_map`` where the installed TRL still has it; TRL 1.x dropped it, and its
    rule is one line: ``{"": local process index}`` on CUDA, None elsewhere.
    """
    import trl

    helper = getattr(trl, "get_kbit_device_map", None)
    if helper is not None:
        return helper()
    import torch
    from accelerate import PartialState

    return {"": PartialState().local_process_index} if torch.cuda.is_available() else None


def quantized_init_kwargs(config: ForgetConfig, init_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``from_pretrained`` kwargs of a quantized base: ``init_kwargs`` + quantization config + device map."""
    if "quantization_config" in init_kwargs:
        raise ConfigError("model_init_kwargs.quantization_config and --load_in_4bit/--load_in_8bit both set the "
                          "quantization; keep the flags (TRL's names) and drop model_init_kwargs.quantization_config")
    kwargs = {**init_kwargs, "quantization_config": quantization_config(config)}
    device_map = kbit_device_map()
    if device_map is not None:
        kwargs.setdefault("device_map", device_map)
    return kwargs


def check_quantization_environment(config: ForgetConfig) -> None:
    """Refuse a quantized base where it cannot load: no CUDA GPU, or bitsandbytes missing (run before training)."""
    if not config.quantized:
        return
    import torch

    bits = "--load_in_4bit" if config.load_in_4bit else "--load_in_8bit"
    if not torch.cuda.is_available() or config.use_cpu:
        why = "torch sees no CUDA device" if not torch.cuda.is_available() else "use_cpu is set"
        raise ConfigError(f"{bits} needs a CUDA GPU ({why}); run on a GPU machine, or drop {bits} to train the "
                          "LoRA adapter on the unquantized base")
    from transformers.utils import is_bitsandbytes_available

    if not is_bitsandbytes_available():
        raise ConfigError(f"{bits} needs bitsandbytes (>= 0.46.1, as transformers requires), which is not "
                          f"installed; {BNB_INSTALL}")


def check_target_modules(model: Any, targets: list[str], flag: str) -> None:
    """Every name in ``targets`` is a module of ``model`` (its last path component, or the full path)."""
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        import torch

        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        modules = sorted({n.rsplit(".", 1)[-1] for n in names if n})
        hint = (f"its linear layers are {linear} (or use all-linear)" if flag == "--lora_target_modules"
                else f"its modules are named {modules}")
        raise ConfigError(f"{flag} {missing} not found in {model.__class__.__name__}; {hint}")
