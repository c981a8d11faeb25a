"""Retain sets on real data: default from the fine-tune run, sizes, and never an evaluated doc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_forget.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def data_env(mirror_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
        yield


def _cfg(**kwargs):
    from lm_forget.train.config import ForgetConfig

    return ForgetConfig(use_cpu=True, bf16=False, stage="forget", model="m", **kwargs)


def test_default_retain_is_the_other_finetuned_tasks(tmp_path):
    from lm_forget.data.api import load_docs
    from lm_forget.train.methods.retain import doc_key, load_retain_docs

    ft = tmp_path / "ft"
    ft.mkdir()
    (ft / "forget_config.json").write_text(json.dumps({"tasks": ["forget_cola", "forget_sst2"]}))
    config = _cfg(tasks=["forget_cola"], method="grad_diff", init_adapter=str(ft), num_examples=20)
    forget = load_docs("forget_cola", "train")[:20]
    retain = load_retain_docs(config, forget)
    assert len(retain) == 20 and {d["task"] for d in retain} == {"forget_sst2"}
    assert retain == load_retain_docs(config, forget)  # deterministic
    held_out = {doc_key(d) for t in ("forget_cola", "forget_sst2") for d in load_docs(t, "test")}
    assert not {doc_key(d) for d in retain} & (held_out | {doc_key(d) for d in forget})
    sized = load_retain_docs(_cfg(tasks=["forget_cola"], method="grad_diff", retain=["forget_sst2"],
                                  retain_size=7), forget)
    assert len(sized) == 7


def test_retain_never_overlaps_an_evaluated_doc(tmp_path):
    from lm_forget.data.api import load_docs
    from lm_forget.train.methods.retain import load_retain_docs

    pool = load_docs("forget_sst2", "train")
    config = _cfg(tasks=["forget_cola"], method="grad_diff", retain=["forget_sst2"], retain_size=len(pool))
    # a forget set that repeats retain-pool questions under other ids: must be refused, naming the docs
    forget = [dict(d, id=f"copy/{d['id']}") for d in pool[:3]]
    with pytest.raises(ConfigError, match=r"retain set overlaps 3 evaluated doc\(s\).*the forget set \(copy/"):
        load_retain_docs(config, forget)


def test_retain_needs_a_source():
    from lm_forget.train.methods.retain import retain_tasks

    with pytest.raises(ConfigError, match="needs a retain set.*--retain TASK"):
        retain_tasks(_cfg(tasks=["forget_cola"], method="rmu"))


def test_method_example_config_parses():
    from lm_forget.train.cli import parse_config

    config = parse_config(["--config", str(REPO_ROOT / "configs" / "train" / "forget_methods_tiny_cpu.yaml"),
                           "--method", "simnpo", "--method_args", '{"beta": 3.0}'])
    assert config.method == "simnpo" and config.forget_method.parse_params(config.method_args).beta == 3.0
    assert config.retain == ["forget_sst2"] and config.retain_weight == 1.0
    yaml_only = parse_config(["--config", str(REPO_ROOT / "configs" / "train" / "forget_methods_tiny_cpu.yaml")])
    assert yaml_only.method == "npo" and yaml_only.method_args == {"beta": 0.1}
