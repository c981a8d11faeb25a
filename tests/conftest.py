"""Shared fixtures: real data and the real tiny model from ../shared (fail loudly in CI if missing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"


def _shared_dir() -> Path:
    return Path(os.environ.get("LM_FORGET_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()


def _require(path: Path, what: str) -> Path:
    if path.exists():
        return path
    message = (
        f"{what} not found at {path}. Tests need ../shared beside the checkout "
        "(or LM_FORGET_SHARED_DIR pointing to it)."
    )
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder (real data and model)."""
    return _require(_shared_dir(), "shared folder")


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """Real Hugging Face benchmark mirrors: <dataset_path>/<name or default>/<split>.jsonl."""
    return _require(_shared_dir() / "data" / "hf", "benchmark mirrors")


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The real pretrained tiny Llama (stories260K)."""
    return _require(_shared_dir() / "models" / "stories260K", "stories260K model")


@pytest.fixture(scope="session")
def fixture_mirror_dir() -> Path:
    """Our own small mirrors, in exact HF schema, for sources ../shared does not cover."""
    return FIXTURES_DIR / "hf"
