"""Planted-truth validation: lm-eval output folders with known effects (lm_forget.analysis.simulate), read
and analysed exactly as real ones. The 500-study version with the recorded figures is bench/bench_planted.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lm_forget.analysis.api import analyze
from lm_forget.analysis.control import NO_BASELINE
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.pooled import resample_replicates
from lm_forget.analysis.render import render
from lm_forget.analysis.results import compute_results
from lm_forget.analysis.simulate import PlantedTask, correlated_tasks, simulate_noise, simulate_phases, write_study
from lm_forget.analysis.verdicts import verdict
from lm_forget.analysis.writer import write_report
from lm_forget.cli import main as cli_main

FAST = AnalysisOptions(n_bootstrap=500, n_permutations=500, n_power=200, predictors=("confidence",),
                       formats=("png",))


def _covered(metrics, tasks: list[PlantedTask]) -> dict[str, list[bool]]:
    truth = {t.name: {"acc_finetuned": t.acc_finetuned, "acc_forget": t.acc_forget, "forget_drop": t.forget_drop,
                      "forget_gap": t.acc_forget - 0.5, "forget_ratio": t.forget_ratio} for t in tasks}
    out: dict[str, list[bool]] = {k: [] for k in truth[tasks[0].name]}
    for _, row in metrics.iterrows():
        for k, v in truth[row["task"]].items():
            out[k].append(bool(row[f"{k}_lo"] <= v <= row[f"{k}_hi"]))
    return out


@pytest.mark.e2e
def test_planted_accuracies_drops_and_ratios_are_covered_at_the_nominal_rate(tmp_path):
    covered: dict[str, list[bool]] = {}
    for s in range(12):
        rng = np.random.default_rng(s)
        tasks = [PlantedTask(f"forget_c{i}", 200, 0.55, float(rng.uniform(0.7, 0.95)), 0.0) for i in range(6)]
        tasks = [PlantedTask(t.name, t.n_docs, t.acc_pretrained, t.acc_finetuned,
                             t.acc_finetuned - float(rng.uniform(0, 1)) * (t.acc_finetuned - 0.5)) for t in tasks]
        res = compute_results(**write_study(tmp_path / f"s{s}", simulate_phases(tasks, seed=s)), options=FAST)
        for k, v in _covered(res.metrics, tasks).items():
            covered.setdefault(k, []).extend(v)
    rates = {k: float(np.mean(v)) for k, v in covered.items()}
    assert all(0.85 <= r <= 1.0 for r in rates.values()), rates  # 72 intervals each; nominal 0.95


@pytest.mark.e2e
def test_planted_correlation_is_found_and_the_null_is_not(tmp_path):
    strong = compute_results(**write_study(tmp_path / "strong", simulate_phases(
        correlated_tasks(12, rho=0.95, seed=1, n_docs=400), seed=1)), options=FAST)
    row = strong.tests[(strong.tests["predictor"] == "confidence_finetuned") & (strong.tests["role"] == "primary")]
    assert verdict(row.iloc[0], FAST) == "significant" and row["statistic"].iloc[0] > 0.6
    hits = 0
    for s in range(20):
        null = compute_results(**write_study(tmp_path / f"null{s}", simulate_phases(
            correlated_tasks(10, rho=0.0, seed=100 + s, n_docs=150), seed=100 + s)), options=FAST)
        primary = null.tests[null.tests["role"] == "primary"]
        hits += any(verdict(r, FAST) == "significant" for _, r in primary.iterrows())
    assert hits <= 3  # family-wise rate 5% expected: 1 of 20; 3 would already be 15%


@pytest.mark.e2e
def test_four_tasks_nan_column_and_normalisation_artefact_through_the_report(tmp_path):
    tasks = [PlantedTask("forget_a", 300, 0.55, 0.90, 0.60, 0.95), PlantedTask("forget_b", 300, 0.55, 0.90, 0.70, 0.85),
             PlantedTask("forget_c", 300, 0.55, 0.90, 0.80, 0.75), PlantedTask("forget_d", 300, 0.55, 0.90, 0.88, 0.65),
             PlantedTask("forget_never", 300, 0.5, 0.5, 0.5, 0.55)]
    phases = write_study(tmp_path / "study", simulate_phases(tasks, seed=7))
    mdir = tmp_path / "matrix"
    mdir.mkdir()
    acc_ft = {"forget_a": 0.6, "forget_b": 0.7, "forget_c": 0.8, "forget_d": 0.95, "forget_never": 0.5}
    drop = {"forget_a": 0.02, "forget_b": 0.04, "forget_c": 0.06, "forget_d": 0.08}
    pd.DataFrame([{"trained_task": r, "eval_task": c, "acc_forget": acc_ft[c] - (drop[r] if c != "forget_never" else 0),
                   "acc_finetuned": acc_ft[c], "n": 20000} for r in drop for c in acc_ft]).to_csv(mdir / "matrix.csv",
                                                                                                 index=False)
    out = analyze(**phases, matrix=mdir, out=tmp_path / "report", options=FAST)
    md = (out / "index.md").read_text()
    metrics = {m["task"]: m for m in json.loads((out / "metrics.json").read_text())}
    assert metrics["forget_never"]["ratio_note"].startswith("undefined") and metrics["forget_a"]["ratio_note"] == ""
    # the NaN task leaves n = 4: no test can run, said once (not a table of dashes)
    assert "not testable here: needs >= " in md and "(this report has 4)" in md and "significant at alpha" not in md
    summary = json.loads((out / "matrix_summary.json").read_text())
    assert summary["n_cols"] == 4 and summary["dropped_cols"] == ["forget_never"]
    assert summary["normalisation_artefact"] and "NORMALISATION ARTEFACT" in md
    assert NO_BASELINE in md
    assert "[" in metrics_table(md)  # intervals in the table


def metrics_table(md: str) -> str:
    return md.split("## Accuracies and forgetting metrics", 1)[1].split("![", 1)[0]


@pytest.mark.e2e
def test_pure_noise_forgetting_is_no_stronger_than_its_control(tmp_path):
    names = [f"forget_n{i}" for i in range(4)]
    folders = write_study(tmp_path / "noise", simulate_noise(names, 600, seed=3))
    control = folders.pop("control")
    bare = compute_results(**folders, options=FAST)
    auc = bare.example_tests[(bare.example_tests["method"] == "auc")
                             & (bare.example_tests["predictor"] == "confidence_finetuned")]
    assert (auc["statistic"] < 0.35).all() and (auc["p"] < 1e-6).all()  # the trap: a "strong" association
    res = compute_results(**folders, control=control, options=FAST)
    ex = res.control_excess[res.control_excess["predictor"] == "confidence_finetuned"]
    assert len(ex) == 4 and ((ex["excess_lo"] <= 0) & (ex["excess_hi"] >= 0)).sum() >= 3
    assert (res.control_deciles["flip_control"].iloc[0] > 2 * res.control_deciles["flip_control"].iloc[-1])
    out = tmp_path / "report"
    assert cli_main(["analyze", "--pretrained", str(folders["pretrained"]), "--finetuned", str(folders["finetuned"]),
                     "--forget", str(folders["forget"]), "--control", str(control), "--out", str(out),
                     "--n-bootstrap", "200", "--n-permutations", "200", "--n-power", "100", "--formats", "png",
                     "--predictors", "confidence"]) == 0
    md = (out / "index.md").read_text()
    assert "against the control cell" in md and NO_BASELINE not in md
    assert (out / "control_flip_by_decile.csv").is_file() and (out / "control_excess.json").is_file()


@pytest.mark.e2e
def test_several_forget_seeds_pool_into_one_headline_test(tmp_path):
    tasks = correlated_tasks(12, rho=0.95, seed=5, n_docs=200)
    folders = write_study(tmp_path / "seeds", simulate_phases(tasks, seed=5, forget_seeds=(1, 2)))
    forgets = [folders.pop("forget"), folders.pop("forget_s1"), folders.pop("forget_s2")]
    res = compute_results(**folders, forget=forgets, options=FAST)
    head = res.tests[(res.tests["role"] == "primary") & (res.tests["predictor"] == "confidence_finetuned")].iloc[0]
    assert head["outcome"] == "forget_ratio (mean of 3 seeds)" and head["ci_method"].startswith("hierarchical")
    assert head["ci_low"] <= head["statistic"] <= head["ci_high"] and verdict(head, FAST) == "significant"
    seeds = res.tests[res.tests["role"].str.startswith("sensitivity (seed")]
    assert len(seeds) == 3 * 2 and seeds["p_holm"].isna().all()  # 3 seeds x 2 task-level confidence predictors
    assert sorted(res.metrics_all["seed"].unique()) == sorted(f.name for f in forgets)  # readable labels
    mean = np.mean([res.metrics_all.loc[(res.metrics_all["seed"] == f.name) & (res.metrics_all["task"] == "forget_p00"),
                                        "forget_ratio"].iloc[0] for f in forgets])
    assert res.outcome["forget_p00"] == mean
    md = (write_report(render(res), tmp_path / "report") / "index.md").read_text()
    assert "confidence_finetuned vs forget_ratio (mean of 3 seeds) (n=12 tasks)" in md and "hierarchical" in md


def test_two_level_replicate_draws_keep_forget_seeds_within_their_fine_tune_seed():
    rng = np.random.default_rng(0)
    groups = [0, 0, 0, 1, 1, 1]  # 2 fine-tune seeds x 3 forget seeds
    draws = resample_replicates(400, 5, groups, rng)
    assert draws.shape == (400, 5, 6)
    blocks = draws.reshape(400, 5, 2, 3) // 3  # the fine-tune seed of every drawn replicate, per drawn block
    assert (blocks == blocks[..., :1]).all()  # a block never mixes fine-tune seeds
    assert {0, 1} <= set(np.unique(blocks[..., 0]))  # and both fine-tune seeds get drawn
    both = (blocks[..., 0, 0] == blocks[..., 1, 0]).mean()  # same fine-tune seed drawn twice: about half the time
    assert 0.4 < both < 0.6
    one = resample_replicates(50, 4, [0, 0, 0], np.random.default_rng(1))  # one fine-tune: the plain seed draw
    assert (one == np.random.default_rng(1).integers(0, 3, size=(50, 4, 3))).all()
    try:
        resample_replicates(10, 2, [0, 0, 1], rng)
    except ValueError as err:
        assert "unbalanced" in str(err)
    else:
        raise AssertionError("an unbalanced design must be refused")


@pytest.mark.e2e
def test_fine_tune_seeds_pool_with_each_replicate_against_its_own_fine_tuned_model(tmp_path):
    tasks = correlated_tasks(12, rho=0.95, seed=5, n_docs=200)
    f = write_study(tmp_path / "ft", simulate_phases(tasks, seed=5, forget_seeds=(1,), finetune_seeds=(1,)))
    forgets = [f["forget"], f["forget_s1"], f["forget_f1"], f["forget_f1_s1"]]
    finetuned = [f["finetuned"], f["finetuned"], f["finetuned_f1"], f["finetuned_f1"]]
    res = compute_results(pretrained=f["pretrained"], finetuned=finetuned, forget=forgets, options=FAST)
    head = res.tests[(res.tests["role"] == "primary") & (res.tests["predictor"] == "confidence_finetuned")].iloc[0]
    assert head["outcome"] == "forget_ratio (mean of 4 replicates: 2 fine-tune x 2 forget seeds)"
    assert head["ci_method"] == "hierarchical (tasks, fine-tune seeds, forget seeds, docs)"
    assert head["ci_low"] <= head["statistic"] <= head["ci_high"] and verdict(head, FAST) == "significant"
    # each replicate's ratio is against its own fine-tuned model: the f1 replicate equals f1 analysed alone
    alone = compute_results(pretrained=f["pretrained"], finetuned=f["finetuned_f1"], forget=f["forget_f1"],
                            options=FAST)
    m = res.metrics_all
    assert sorted(m["seed"].unique()) == sorted(x.name for x in forgets)
    own = m[(m["seed"] == "forget_f1") & (m["split"] == FAST.split)].set_index("task")["forget_ratio"]
    assert np.allclose(own.sort_index(), alone.metrics.set_index("task")["forget_ratio"].sort_index())
    assert not np.allclose(own.sort_index(), res.metrics.set_index("task")["forget_ratio"].sort_index())
    assert len(res.outcome) == 12 and all(np.isfinite(list(res.outcome.values())))
    try:
        compute_results(pretrained=f["pretrained"], finetuned=finetuned[:3], forget=forgets, options=FAST)
    except Exception as err:  # one fine-tuned folder per replicate, or one for all
        assert "fine-tuned folders" in str(err)
    else:
        raise AssertionError("a count mismatch must be refused")
