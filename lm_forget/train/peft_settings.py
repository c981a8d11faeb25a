"""``PeftSettings``: the LoRA and quantization fields of ``ForgetConfig``, under TRL ``ModelConfig``'s names.

Kept apart from ``config.py`` (one job: what the adapter and the base's precision are) and free of heavy
imports, so the step-key rules (``run/keys.py``) can read the defaults without importing TRL.
``lm_forget.train.peft_setup`` turns these fields into PEFT / bitsandbytes configs through TRL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from lm_forget.errors import ConfigError

QUANT_TYPES = ("nf4", "fp4")


def split_names(values: Any) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (CLI flags and YAML lists alike); None -> ``[]``."""
    return [t.strip() for item in (values or []) for t in str(item).split(",") if t.strip()]


def unique_names(values: Any, flag: str) -> list[str]:
    """:func:`split_names`, refusing a name listed twice (``--tasks a,a`` would train every doc twice)."""
    from collections import Counter

    names = split_names(values)
    twice = [name for name, n in Counter(names).items() if n > 1]
    if twice:
        from lm_forget.errors import ConfigError

        raise ConfigError(f"{flag} lists {', '.join(twice)} more than once ({','.join(names)}); each task counts "
                          "once: list it once (more examples per task: --num_examples)")
    return names


@dataclass
class PeftSettings:
    r"""LoRA adapter and quantized base (QLoRA) settings; the names are TRL ``ModelConfig``'s.

    Parameters:
        use_lora (`bool`, defaults to True):
            Train a LoRA adapter; ``--no-lora`` does full fine-tuning (TRL's ``use_peft``).
        lora_r, lora_alpha, lora_dropout:
            LoRA rank, scaling numerator and dropout.
        lora_target_modules (`list[str]`, defaults to ``["all-linear"]``):
            Module names to adapt; ``all-linear`` = every linear projection except the output head.
        lora_modules_to_save (`list[str]`, defaults to ``[]``):
            Modules trained in full and saved with the adapter (e.g. ``lm_head``, ``embed_tokens``).
        use_rslora (`bool`, defaults to False):
            Rank-stabilized LoRA: scale the update by ``lora_alpha / sqrt(r)`` instead of ``lora_alpha / r``.
        use_dora (`bool`, defaults to False):
            DoRA: a learned magnitude per output feature on top of the LoRA direction (slower per step).
        load_in_4bit (`bool`, defaults to False):
            QLoRA: load the frozen base in 4 bit with bitsandbytes (CUDA only; LoRA only).
        load_in_8bit (`bool`, defaults to False):
            Load the frozen base in 8 bit with bitsandbytes (CUDA only; LoRA only).
        bnb_4bit_quant_type (`str`, defaults to ``"nf4"``):
            4-bit data type: ``nf4`` (QLoRA's NormalFloat) or ``fp4``.
        use_bnb_nested_quant (`bool`, defaults to False):
            Quantize the 4-bit quantization constants too (QLoRA's double quantization, ~0.4 bit/param less).
    """

    use_lora: bool = field(default=True, metadata={"help": "Train a LoRA adapter (--no-lora: full fine-tuning)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"], metadata={"help": "Modules to adapt (default: all-linear)."}
    )
    lora_modules_to_save: list[str] = field(
        default_factory=list, metadata={"help": "Modules trained in full and saved with the adapter (e.g. lm_head)."}
    )
    use_rslora: bool = field(default=False, metadata={"help": "Rank-stabilized LoRA (scale alpha/sqrt(r))."})
    use_dora: bool = field(default=False, metadata={"help": "DoRA (weight-decomposed LoRA)."})
    load_in_4bit: bool = field(default=False, metadata={"help": "QLoRA: 4-bit base via bitsandbytes (CUDA only)."})
    load_in_8bit: bool = field(default=False, metadata={"help": "8-bit base via bitsandbytes (CUDA only)."})
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = field(
        default="nf4", metadata={"help": "4-bit data type (with --load_in_4bit): nf4 or fp4."}
    )
    use_bnb_nested_quant: bool = field(
        default=False, metadata={"help": "Double quantization of the 4-bit constants (with --load_in_4bit)."}
    )

    @property
    def quantized(self) -> bool:
        """True when the base model loads in 4 or 8 bit."""
        return bool(self.load_in_4bit or self.load_in_8bit)

    def check_peft_settings(self) -> None:
        """Normalize the name lists and refuse combinations that cannot work (parse time, no imports)."""
        self.lora_target_modules = split_names(self.lora_target_modules)
        self.lora_modules_to_save = split_names(self.lora_modules_to_save)
        if self.bnb_4bit_quant_type not in QUANT_TYPES:
            raise ConfigError(f"--bnb_4bit_quant_type {self.bnb_4bit_quant_type!r}: use nf4 (QLoRA's) or fp4")
        if self.load_in_4bit and self.load_in_8bit:
            raise ConfigError("--load_in_4bit and --load_in_8bit are both set; keep one (4 bit is QLoRA)")
        if self.quantized and not self.use_lora:
            bits = "--load_in_4bit" if self.load_in_4bit else "--load_in_8bit"
            raise ConfigError(f"{bits} needs LoRA: a quantized base stays frozen, so full fine-tuning (--no-lora / "
                              f"use_lora: false) cannot train it; drop --no-lora, or drop {bits}")
        if not self.load_in_4bit:
            four_bit = [name for name, value in (("bnb_4bit_quant_type", self.bnb_4bit_quant_type != "nf4"),
                                                 ("use_bnb_nested_quant", self.use_bnb_nested_quant)) if value]
            if four_bit:
                raise ConfigError(f"--{four_bit[0]} applies to a 4-bit base only; add --load_in_4bit or drop it")


def _defaults() -> dict[str, Any]:
    from dataclasses import MISSING, fields

    out: dict[str, Any] = {}
    for f in fields(PeftSettings):
        out[f.name] = f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]
    return out


#: fields added after studies were keyed (issue 13): a step key drops them while they are at these defaults
KEY_NEUTRAL_DEFAULTS: dict[str, Any] = {name: value for name, value in _defaults().items() if name in (
    "lora_modules_to_save", "use_rslora", "use_dora", "load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type",
    "use_bnb_nested_quant")}
