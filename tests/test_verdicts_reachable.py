"""Every verdict is a test that can come out either way at its n; below the n that could give it, the report says
"needs >= N docs"; the planners warn before any work (planted truth from lm_forget.analysis.simulate)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binomtest

from lm_forget.analysis import decide
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.protocol_report import ProtocolCell, forget_set_data, protocol_rows, render_forget_set
from lm_forget.analysis.simulate import PlantedTask, simulate_phases, write_study
from lm_forget.errors import ConfigError

OPTS = AnalysisOptions()  # margin 0.1, alpha 0.05: the defaults every table uses
SEEDS = range(100)


def _correct(acc_pre: float, acc_ft: float, acc_forget: float, n: int, seed: int) -> dict[str, np.ndarray]:
    """Per-doc 0/1 of the three phases of one planted task (paired docs, Gaussian copula)."""
    phases = simulate_phases([PlantedTask("t", n, acc_pre, acc_ft, acc_forget)], seed=seed)
    return {p: np.array([c for *_, c in phases[p]["t"]], dtype=float) for p in ("pretrained", "finetuned", "forget")}


def _chance(correct: np.ndarray) -> str:
    return decide.chance_decision(int(correct.sum()), len(correct), margin=OPTS.margin, alpha=OPTS.alpha).verdict


def test_p_values_are_scipys_and_the_threshold_is_where_the_tost_first_passes():
    assert decide.above_p(70, 100, 0.6) == binomtest(70, 100, 0.6, alternative="greater").pvalue
    assert decide.near_chance_p(50, 100, 0.5, 0.1) == max(binomtest(50, 100, 0.4, alternative="greater").pvalue,
                                                          binomtest(50, 100, 0.6, alternative="less").pvalue)
    needed = decide.near_chance_n(0.5, OPTS.margin, OPTS.alpha)
    assert needed == 84  # the default margin and level (docs/analysis.md's table)

    def best(n: int) -> float:  # the outcome closest to chance that n docs allow
        return min(decide.near_chance_p(k, n, 0.5, OPTS.margin) for k in (n // 2, (n + 1) // 2))

    assert best(needed) < OPTS.alpha <= best(needed - 1)
    assert all(best(n) < OPTS.alpha for n in range(needed, needed + 40))
    assert decide.near_chance_n(0.5, 0.05, 0.05) > 3 * needed  # a tighter margin needs many more docs
    assert decide.one_sided_n(0.6, 0.05) == 6 and 0.6 ** 6 < 0.05 <= 0.6 ** 5


def test_at_chance_is_near_chance_and_0_7_did_not_take_at_large_n():
    near = [_chance(_correct(0.5, 0.9, 0.5, 600, s)["forget"]) for s in SEEDS]  # measured: 300 of 300 seeds
    took_not = [_chance(_correct(0.5, 0.9, 0.7, 400, s)["forget"]) for s in SEEDS]
    assert near.count(decide.NEAR_CHANCE) >= 95, near
    assert took_not.count(decide.DID_NOT_TAKE) >= 95, took_not


def test_small_forget_sets_say_how_many_docs_they_need():
    words = [_chance(_correct(0.5, 0.9, 0.5, 40, s)["forget"]) for s in SEEDS]
    assert words.count("needs >= 84 docs") >= 95, words
    # a forget pass that plainly failed is still called so at small n: that verdict is reachable there
    assert _chance(np.ones(20)) == decide.DID_NOT_TAKE


@pytest.mark.parametrize(("truth", "accs", "n"), [
    ("kept", (0.55, 0.9, 0.9), 300),
    ("partial", (0.5, 0.95, 0.72), 1000),
    ("to_pretrained", (0.55, 0.9, 0.55), 1000),
])
def test_behaviours_come_out_as_planted(truth, accs, n):
    words = []
    for s in range(40):
        c = _correct(*accs, n, s)
        word, _, _ = decide.behaviour_decision(c["finetuned"] - c["forget"], c["forget"] - c["pretrained"],
                                               margin=OPTS.margin, alpha=OPTS.alpha)
        words.append(word)
    assert words.count(truth) >= 38, words


def test_a_tiny_unchanged_task_needs_more_docs_not_a_verdict():
    same = np.zeros(10)
    word, cands, p = decide.behaviour_decision(same, same, margin=OPTS.margin, alpha=OPTS.alpha)
    assert word == "needs >= 29 docs" and "kept" in cands and p["kept"] == pytest.approx(0.9 ** 10)
    word, _, _ = decide.behaviour_decision(np.zeros(29), np.zeros(29), margin=OPTS.margin, alpha=OPTS.alpha)
    assert word == "kept"  # from 29 docs on an unchanged model is shown within the margin


def test_forget_set_table_counts_the_docs_scored_and_says_needs(tmp_path):
    phases = write_study(tmp_path / "s", simulate_phases([PlantedTask("forget_t", 80, 0.5, 0.9, 0.5)], seed=1))
    cell = ProtocolCell("forget_t", 160, 0, forget_set={"forget": phases["forget"]},
                        held_out={"forget": phases["forget"]})
    (row,) = protocol_rows([cell], OPTS)
    assert (row["n"], row["size"]) == (80, 160)  # the pool held 80 of the 160 configured docs
    assert row["forget_set_verdict"] == "needs >= 84 docs" and row["forget_set_n_needed"] == 84
    lines = "\n".join(render_forget_set(forget_set_data([(None, [row])], tmp_path / "out", tmp_path, OPTS), OPTS))
    assert "| forget_t | 80 | 160 | 0 |" in lines and "needs >= 84 docs" in lines
    wide = AnalysisOptions(margin=0.15)  # one setting moves every table's verdict
    assert protocol_rows([cell], wide)[0]["forget_set_n_needed"] < 80


def test_one_margin_setting_and_unknown_names_list_the_allowed_ones():
    from lm_forget.run.section_checks import check_analysis_options

    with pytest.raises(ConfigError, match=r"unknown key 'chance_margin'\.(.|\n)*Allowed keys: .*\bmargin\b"):
        check_analysis_options({"chance_margin": 0.05})
    with pytest.raises(ConfigError, match="margin must lie strictly between 0 and 0.5"):
        AnalysisOptions(margin=0.6)
    check_analysis_options({"margin": 0.05})


def _config(tmp_path, n: int, **analysis):
    from lm_forget.run import run_config_from_dict

    return run_config_from_dict({
        "run_dir": str(tmp_path / "run"), "model": {"name_or_path": str(tmp_path / "model")},
        "tasks": {"finetune": ["forget_sst2"], "forget": ["forget_sst2"], "eval": ["forget_sst2"]},
        "stages": ["finetune", "forget", "eval_forget", "analyze"], "seeds": [0],
        "forget": {"num_examples": [n]}, "data": {"eval_size": 200}, "analysis": {"options": analysis},
    }, check_tasks=False)


def test_planner_warns_before_any_work(tmp_path, caplog):
    from lm_forget.run.reach_checks import reach_warnings

    with caplog.at_level("WARNING", logger="lm_forget.run.reach_checks"):
        config = _config(tmp_path, 40)
    (forget_size, tasks) = reach_warnings(config)
    assert "forget.num_examples 40" in forget_size and "margin 0.1" in forget_size
    assert "needs >= 84 docs" in forget_size
    assert "1 forgotten and evaluated task(s)" in tasks and "needs >= 6 tasks" in tasks
    assert "forget.num_examples 40" in caplog.text  # logged by the config checks, before any step runs
    assert not [w for w in reach_warnings(_config(tmp_path, 100)) if "num_examples" in w]
    (short, _) = reach_warnings(_config(tmp_path, 100), {"forget_sst2": 50})  # a pool smaller than the size
    assert "forget_sst2 holds 50" in short and "fewer than 84 docs" in short
    assert any("needs >= 308 docs" in w for w in reach_warnings(_config(tmp_path, 100, margin=0.05)))


def test_dry_run_prints_the_warning(tmp_path):
    import subprocess
    import sys

    import yaml

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(_config(tmp_path, 40).to_dict()))))
    done = subprocess.run([sys.executable, "-m", "lm_forget", "run", str(path), "--dry-run"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "forget.num_examples 40" in done.stderr + done.stdout and "needs >= 84 docs" in done.stderr + done.stdout
