"""How deep is the forgetting? The opt-in stages ``mia`` and ``eval_quantized``, their plan, and the report section."""

from __future__ import annotations

import importlib.util
import math

import pytest
from test_run_relearn import KEYS_AT_SCHEMA, _data

from lm_forget.errors import ConfigError
from lm_forget.io import read_jsonl
from lm_forget.run import build_plan, execute, run_config_from_dict

HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None
DEEP = ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "mia", "eval_quantized", "analyze"]


def test_default_adds_no_step_and_keeps_every_key(tmp_path):
    config = run_config_from_dict(_data(tmp_path))
    assert config.mia.k == 0.2 and config.quantize.bits == [8, 4]
    keys = {s.name: s.key for s in build_plan(config).steps}
    assert keys == KEYS_AT_SCHEMA


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes not installed (pip install 'lm-forget[quantize]')")
def test_plan_adds_mia_and_quantized_steps_per_model(tmp_path):
    base = build_plan(run_config_from_dict(_data(tmp_path)))
    plan = build_plan(run_config_from_dict(_data(tmp_path, stages=DEEP[:-1] + ["features", "analyze"])))
    cells = sorted({s.cell.id for s in base.steps if s.stage == "forget"})
    mia = sorted(s.name for s in plan.steps if s.kind == "mia")
    assert mia == sorted([*(f"mia/{p}/n{n}" for p in ("pretrained", "finetuned") for n in (100, 1000)),
                          *(f"mia/{c}" for c in cells)])
    quant = sorted(s.name for s in plan.steps if s.kind == "quantized")
    assert quant == sorted([*(f"eval_quantized/finetuned/n{n}/int{b}" for n in (100, 1000) for b in (8, 4)),
                            *(f"eval_quantized/{c}/int{b}" for c in cells for b in (8, 4))])
    assert plan.step("mia/forget_cola/n100/s0").deps == ("forget/forget_cola/n100/s0",)
    # same-split non-members start past every pool a step may train on (data.train_size, default 1000)
    assert plan.step("mia/forget_cola/n100/s0").settings["study_reach"] == 1000
    assert plan.step("eval_quantized/finetuned/n100/int4").deps == ("finetune",)
    assert set(plan.step("analyze").deps) >= set(mia) | set(quant)
    keys = {s.name: s.key for s in plan.steps}
    assert {n: k for n, k in KEYS_AT_SCHEMA.items() if n != "analyze"} == {
        n: keys[n] for n in KEYS_AT_SCHEMA if n != "analyze"}
    other = build_plan(run_config_from_dict(_data(tmp_path, stages=DEEP[:-1] + ["features", "analyze"],
                                                  quantize={"bits": [4]}, mia={"k": 0.5})))
    assert other.step("mia/forget_cola/n100/s0").key != plan.step("mia/forget_cola/n100/s0").key
    assert not [s for s in other.steps if s.name.endswith("/int8")]


def test_same_split_non_members_start_past_every_retain_set(tmp_path):
    from lm_forget.run.mia_docs import study_reach

    config = run_config_from_dict(_data(tmp_path, forget={"num_examples": [100], "methods": [
        "random_labels", {"name": "grad_diff", "retain": ["forget_cb"], "retain_size": 1500}]}))
    assert study_reach(config) == 1500


@pytest.mark.parametrize(("changes", "expected"), [
    ({"stages": ["eval_pretrained", "mia"]}, "'mia' needs 'forget'"),
    ({"stages": ["finetune", "forget", "eval_quantized", "mia"]}, "'mia' cannot come after 'eval_quantized'"),
    ({"stages": ["finetune", "forget", "eval_forget", "mia", "analyze"], "eval": {"backend": "vllm"}},
     "mia score the model in this process"),
    ({"mia": {"k": 0}}, "config.mia.k"),
    ({"stages": ["finetune", "forget", "eval_quantized"], "quantize": {"bits": [8, 8]}}, "quantize.bits"),
    ({"stages": ["finetune", "forget", "eval_quantized"], "quantize": {"bits": [3]}}, "quantize.bits"),
    ({"quantize": {"quantizer": "gptq"}}, "config.quantize.quantizer"),
])
def test_bad_deep_configs_fail_before_any_work(tmp_path, changes, expected):
    with pytest.raises(ConfigError) as info:
        run_config_from_dict(_data(tmp_path, **changes))
    assert expected in str(info.value)
    assert not (tmp_path / "run").exists()


def tiny_deep_study(tmp_path, tiny_model_dir, *, quantize: bool) -> dict:
    """stories260K: fine-tune on forget_cola (LoRA), forget 32 docs, score 32 held-out docs; both attacks."""
    train = {"use_lora": True, "learning_rate": 3e-2, "num_train_epochs": 3, "per_device_train_batch_size": 8,
             "lora_r": 8, "lora_alpha": 16, "save_steps": 1000, "max_length": 128}
    stages = [s for s in DEEP if quantize or s != "eval_quantized"]
    return {
        "run_dir": str(tmp_path / "run"),
        "model": {"name_or_path": str(tiny_model_dir), "dtype": "float32"},
        "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola"], "eval": ["forget_cola"]},
        "stages": stages,
        "finetune": {**train, "num_examples": 32},
        "forget": {**train, "num_train_epochs": 12, "num_examples": [32]},
        "eval": {"limit": 32, "batch_size": 16},
        "analysis": {"options": {"n_bootstrap": 1000}},
        "threads": 1,
    }


@pytest.mark.e2e
def test_deep_section_on_stories260k(tmp_path, tiny_model_dir, mirror_dir, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    plan = build_plan(run_config_from_dict(tiny_deep_study(tmp_path, tiny_model_dir, quantize=HAS_BNB)))
    execute(plan)
    out = plan.step("analyze").output
    index = (out / "index.md").read_text()
    assert "## How deep is the forgetting?" in index and "### Membership inference" in index
    table = pd.read_csv(out / "deep" / "mia.csv")
    assert list(zip(table["model"], table["non_members"], strict=True)) == [
        (m, s) for m in ("pretrained", "finetuned", "forget") for s in ("same_split", "held_out")]
    assert (table["forget_docs"] == 32).all() and (table["non_member_docs"] == 32).all()
    scored = read_jsonl(plan.step("mia/pretrained/n32").output / "mia_scores.jsonl")
    ids = {s: {r["id"] for r in scored if r["set"] == s} for s in ("forget_set", "same_split", "held_out")}
    assert not ids["forget_set"] & ids["same_split"] and all("/train/" in i for i in ids["same_split"])
    mia = table[table["non_members"] == "held_out"].set_index("model")
    for score in ("loss", "zlib", "min_k", "min_k_plus_plus"):
        lo, auc, hi = (mia[f"{score}_auc{s}"] for s in ("_lo", "", "_hi"))
        assert ((lo <= auc) & (auc <= hi)).all() and (hi - lo > 0).all()
        # planted: the pretrained model never saw either set, so its AUC is 0.5 within its interval
        assert lo["pretrained"] <= 0.5 <= hi["pretrained"], (score, auc["pretrained"])
    assert mia["note"].isna().all()  # so no row warns that the two sets differ in kind
    # the forgotten model's forget set was trained on twice: the LOSS attack separates it from held-out docs
    assert mia.loc["finetuned", "loss_auc"] > 0.5
    from lm_forget.analysis.findings import Findings

    deep = Findings.read(out).get("deep")  # the section's result in findings.json, per attack with its interval
    assert deep is not None and deep.n is not None and "membership inference" in deep.text
    assert any("vs same_split non-members" in d and "[" in d for d in deep.details)
    if not HAS_BNB:
        return
    assert "### Quantization" in index
    quant = pd.read_csv(out / "deep" / "quantized.csv").set_index("attack")
    assert list(quant.index) == ["none", "int8", "int4"]
    for part in ("forget_set", "held_out"):
        assert (quant[f"{part}_docs"] == 32).all()
        for name in ("acc", "baseline"):
            assert ((quant[f"{part}_{name}_lo"] <= quant[f"{part}_{name}"])
                    & (quant[f"{part}_{name}"] <= quant[f"{part}_{name}_hi"])).all()
    # each quantized row's numbers are lm-eval's own accuracies of that step
    done = plan.step("eval_quantized/forget_cola/n32/s0/int4").done_record()
    assert done["quantizer"] == "bitsandbytes nf4"
    assert quant.loc["int4", "held_out_acc"] == pytest.approx(done["scores"]["held_out"]["forget_cola"]["acc"])
    assert quant.loc["int4", "forget_set_acc"] == pytest.approx(done["scores"]["forget_set"]["forget_cola"]["acc"])
    base8 = plan.step("eval_quantized/finetuned/n32/int8").done_record()
    assert quant.loc["int8", "held_out_baseline"] == pytest.approx(base8["scores"]["held_out"]["forget_cola"]["acc"])
    for attack in ("int8", "int4"):  # a share with its interval, or undefined with the reason
        share = quant.loc[attack, "forget_set_share"]
        note = str(quant.loc[attack, "note"])
        assert (math.isfinite(share) and quant.loc[attack, "forget_set_share_lo"] <= share) or "undefined" in note


def test_mia_rows_warn_when_the_pretrained_model_separates_the_sets(tmp_path):
    import numpy as np

    from lm_forget.analysis.deep_report import DeepCell, deep_data, mia_rows, render_deep
    from lm_forget.analysis.options import AnalysisOptions
    from lm_forget.io import write_jsonl

    rng = np.random.default_rng(0)

    def scores(shift: float) -> list[dict]:  # forget-set docs' losses lowered by ``shift``
        return [{"task": "t", "id": f"{name}{i}", "set": name, "member": m,
                 **{s: float(x) - shift * m for s in ("loss", "zlib", "min_k", "min_k_plus_plus")}}
                for m, name in ((1, "forget_set"), (0, "held_out")) for i, x in enumerate(rng.normal(3, 1, 60))] + [
            {"task": "other", "id": "x", "set": "forget_set", "member": 1, "loss": 0, "zlib": 0, "min_k": 0,
             "min_k_plus_plus": 0}]

    cell = DeepCell(cell="t/n60/s0", task="t", n=60, seed=0)
    for phase, shift in (("pretrained", 0.0), ("finetuned", 2.0), ("forget", 0.0)):
        write_jsonl(tmp_path / f"{phase}.jsonl", scores(shift))
        cell.mia[phase] = tmp_path / f"{phase}.jsonl"
    rows = {(r["model"], r["non_members"]): r for r in mia_rows(cell)}
    assert rows["pretrained", "held_out"]["forget_docs"] == 60  # the other task's doc is not counted
    assert rows["finetuned", "held_out"]["loss_auc_lo"] > 0.8 and rows["pretrained", "held_out"]["note"] == ""
    # no same-split non-member was scored (the split had no room past the study's pools): undefined, and why
    assert math.isnan(rows["pretrained", "same_split"]["loss_auc"])
    assert "lie past the study's pools" in rows["pretrained", "same_split"]["note"]
    from lm_forget.analysis.deep_findings import deep_finding

    assert deep_finding([], []).verdict == "not in this study"
    finding = deep_finding([], mia_rows(cell))  # the forgotten model's held-out row stands in, and says why
    assert "detects the forget set in 0 of 1 cells (1 not detected)" in finding.text
    assert "vs held_out non-members" in finding.details[0] and "lie past the study's pools" not in finding.details[0]
    write_jsonl(tmp_path / "forget.jsonl", scores(2.0))  # a forgotten model whose forget set still stands out
    finding = deep_finding([], mia_rows(cell))
    assert finding.verdict == "an attack finds the forget set in 1 of 1 tries" and "-> detected" in finding.details[0]
    write_jsonl(tmp_path / "pretrained.jsonl", scores(2.0))  # a pretrained model that already separates them
    assert "differ in kind" in mia_rows(cell)[1]["note"]
    output = deep_data([cell])
    lines = render_deep(output, AnalysisOptions())
    assert "### Membership inference" in lines and "### Quantization" not in lines
    assert list(output.tables) == ["mia"] and len(output.tables["mia"]) == len(mia_rows(cell))


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes not installed (pip install 'lm-forget[quantize]')")
def test_per_task_seed_and_method_axes_name_each_model(tmp_path):
    data = _data(tmp_path, stages=["finetune", "forget", "eval_forget", "mia", "eval_quantized", "analyze"],
                 seeds={"finetune": [0, 1], "forget": [0]}, finetune={"per_task": True},
                 forget={"num_examples": [100], "methods": ["random_labels", "npo"]}, quantize={"bits": [4]})
    data["tasks"].pop("finetune")
    plan = build_plan(run_config_from_dict(data))
    names = {s.name: s for s in plan.steps}
    assert names["mia/finetuned/forget_cb/f1/n100"].deps == ("finetune/forget_cb/f1",)
    assert names["mia/finetuned/forget_cb/f1/n100"].settings["tasks"] == ["forget_cb"]
    assert names["eval_quantized/finetuned/forget_cola/f0/n100/int4"].deps == ("finetune/forget_cola/f0",)
    assert names["mia/npo/forget_cb/n100/f1s0"].deps == ("forget/npo/forget_cb/n100/f1s0",)
    assert names["eval_quantized/npo/forget_cb/n100/f1s0/int4"].cell.id == "npo/forget_cb/n100/f1s0"
    # the pretrained model is scored once per size, on every forgotten task
    assert names["mia/pretrained/n100"].settings["tasks"] == ["forget_cola", "forget_cb"]
