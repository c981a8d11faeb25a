"""What a step's key hashes: its settings, with the training sections in a stable form.

A step's key is the digest of its kind, its settings and its dependencies' keys; a study resumes a step
whose key (folder) exists. The form below is step-key schema 1 (``run/key_schema.py``): it hashes the training
settings in a fixed layout (``key_form``), whatever the config spells them. Changing what or how keys hash means
bumping ``KEY_SCHEMA_VERSION``; the runner then refuses studies written in the old form instead of re-keying them.
"""

from __future__ import annotations

from typing import Any

from lm_forget.data.config import DataConfig
from lm_forget.run.config import ForgetSettings, RelearnSettings
from lm_forget.train.peft_settings import KEY_NEUTRAL_DEFAULTS


def data_settings(data: DataConfig) -> dict[str, Any]:
    """What a step key hashes of the data settings: every field, ``carve_fraction`` only when it is not the
    default (so the keys of studies from before it was a setting stay the same)."""
    settings = data.to_dict()
    if settings["carve_fraction"] == DataConfig.carve_fraction:
        settings.pop("carve_fraction")
    return settings


def train_settings(section: Any, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    # dynamics off, per_task off and the LoRA-variant / quantization fields at their defaults keep the keys of
    # studies written before those options existed
    dump = section.model_dump()
    dynamics_off = dump.get("dynamics_every") is None
    return {k: v for k, v in dump.items() if k not in exclude
            and not (k in ("dynamics_every", "dynamics_limit") and dynamics_off)
            and not (k == "per_task" and v is False) and not _at_key_neutral_default(k, v)}


def _at_key_neutral_default(key: str, value: Any) -> bool:
    if key not in KEY_NEUTRAL_DEFAULTS:
        return False
    default = KEY_NEUTRAL_DEFAULTS[key]
    return value == default or (default == [] and value is None)


# The fixed layout of schema 1: two settings hashed under short names, trainer fields under "args".
# Records and configs use the ForgetConfig names only; this layout exists nowhere but in the hash.
_KEY_NAMES = {"use_lora": "lora", "per_device_train_batch_size": "batch_size"}
_SECTION_KEYS = {*ForgetSettings.model_fields, *RelearnSettings.model_fields, "method", "seed"}  # seed: finetune


def key_form(settings: dict[str, Any]) -> dict[str, Any]:
    """What a step's key hashes: its settings, the training ones in the fixed layout of key schema 1."""
    train = settings.get("train")
    if not isinstance(train, dict):
        return settings
    form = {_KEY_NAMES.get(k, k): v for k, v in train.items() if k in _SECTION_KEYS}
    form["args"] = {k: v for k, v in train.items() if k not in _SECTION_KEYS}
    return {**settings, "train": form}
