"""Probe controls: a shuffled-label control probe on the same features (selectivity), exact intervals, and
probes on the pretrained model too."""

from __future__ import annotations

import numpy as np
import pytest

from lm_forget.analysis.probes import ProbeConfig, control_labels, train_probe, with_controls


def _pairs(n_docs: int, seed: int = 0):
    """Planted features: dimension 0 says right (+1) or wrong (-1) exactly, the rest is noise."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, n_docs)
    y = np.zeros((n_docs, 2), dtype=int)
    y[np.arange(n_docs), gold] = 1
    y = y.reshape(-1)
    x = rng.normal(size=(2 * n_docs, 8))
    x[:, 0] = 2 * y - 1 + 0.1 * rng.normal(size=2 * n_docs)
    return x, y


def test_control_labels_keep_one_right_answer_per_doc_and_the_balance():
    _, y = _pairs(300)
    c = control_labels(y, 0)
    assert (c.reshape(-1, 2).sum(1) == 1).all()
    assert c.reshape(-1, 2)[:, 1].sum() == y.reshape(-1, 2)[:, 1].sum()  # a permutation of gold positions
    assert (c == control_labels(y, 0)).all() and not (c == y).all()  # deterministic, and shuffled


def test_selectivity_separates_decodable_labels_from_shuffled_ones():
    x_tr, y_tr = _pairs(400, seed=1)
    x_te, y_te = _pairs(200, seed=2)
    cfg = ProbeConfig(seed=0)
    row = train_probe(x_tr, y_tr, x_te, y_te, cfg)
    control = train_probe(x_tr, control_labels(y_tr, 0), x_te, control_labels(y_te, 1), cfg)
    out = with_controls(row, control)
    assert out["probe_doc_acc"] > 0.95  # the planted direction is decodable
    assert 0.3 < out["control_doc_acc"] < 0.7  # shuffled labels: chance (200 docs)
    assert out["selectivity"] > 0.15  # expected ~0.5: >= 3x this margin
    for name in ("probe", "control"):
        assert out[f"{name}_doc_acc_lo"] <= out[f"{name}_doc_acc"] <= out[f"{name}_doc_acc_hi"]
    assert out["control_doc_acc_hi"] - out["control_doc_acc_lo"] > 0.1  # an honest interval at n=200


def test_pretrained_features_train_probes_when_probes_are_on(tmp_path):
    from lm_forget.run import build_plan, run_config_from_dict

    base = {"run_dir": str(tmp_path / "run"), "model": {"name_or_path": "some/model"},
            "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola"], "eval": ["forget_cola"]},
            "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "features",
                       "analyze"]}
    on = build_plan(run_config_from_dict({**base, "analysis": {"probes": True}}))
    off = build_plan(run_config_from_dict(base))
    assert on.step("features/pretrained").settings["probes"] is True
    assert "probes" not in off.step("features/pretrained").settings  # keys of probe-less studies unchanged


@pytest.mark.e2e
def test_real_probe_rows_carry_controls(tmp_path, tiny_model_dir, mirror_dir, monkeypatch):
    import json

    from lm_forget.analysis.features import FeatureConfig, run_features
    from lm_forget.modeling import ModelRef

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    path = run_features(FeatureConfig(model=ModelRef(str(tiny_model_dir)), tasks=["forget_cola"], limit=40, probes=True,
                                      probe_layers=[5], role="pretrained", device="cpu", dtype="float32"),
                        tmp_path / "f")
    (row,) = json.loads(path.read_text())["probes"]
    assert row["n_test_pairs"] == 80
    for name in ("probe", "control"):
        assert 0 <= row[f"{name}_doc_acc_lo"] <= row[f"{name}_doc_acc"] <= row[f"{name}_doc_acc_hi"] <= 1
    assert row["selectivity"] == pytest.approx(row["probe_doc_acc"] - row["control_doc_acc"])
