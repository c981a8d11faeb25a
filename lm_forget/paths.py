"""Where lm-forget finds its shipped files and keeps its cache."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped_dir(name: str) -> Path:
    """A top-level folder shipped inside the wheel, or beside the package in an editable install."""
    inside = _PACKAGE_DIR / name
    if inside.is_dir():
        return inside
    return _PACKAGE_DIR.parent / name


def task_configs_dir() -> Path:
    """The folder holding the suite's lm-eval task YAMLs."""
    return _shipped_dir("task_configs")


def hub_cards_dir() -> Path:
    """The folder holding the Jinja model/dataset card templates."""
    return _shipped_dir("hub_cards")


def cache_root() -> Path:
    """Root of lm-forget's on-disk cache, following Hugging Face conventions.

    ``LM_FORGET_CACHE`` wins; otherwise ``$HF_HOME/lm_forget`` with ``HF_HOME`` as huggingface_hub resolves
    it (``huggingface_hub.constants.HF_HOME``: ``$XDG_CACHE_HOME/huggingface``, ``~/.cache/huggingface``).
    """
    explicit = os.environ.get("LM_FORGET_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HOME).expanduser() / "lm_forget"
