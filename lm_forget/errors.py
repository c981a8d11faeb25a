"""The error hierarchy: every message says what was wrong, where, and how to fix it."""

from __future__ import annotations


class LmForgetError(Exception):
    """Base class for errors that the CLI turns into one readable line and a non-zero exit."""

    exit_code = 2


class DataError(LmForgetError):
    """A dataset, mirror, cache or doc is missing or malformed."""


class ConfigError(LmForgetError):
    """A task name, config file or option is invalid."""


class HubError(LmForgetError):
    """A Hugging Face Hub operation failed (auth, permissions, network)."""
