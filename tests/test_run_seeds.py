"""Multi-seed studies: the across-seed summary is the mean and a t-interval of each task's outcome."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest
from scipy import stats

from lm_forget.run.steps.analyze import Report, seed_summary


def _report(seed: int, rows: list[dict]) -> Report:
    """A per-size analysis in memory, as the analyze step holds it (only its metrics table is read here)."""
    return Report(f"n100-s{seed}", None, 100, seed, None, SimpleNamespace(metrics_all=pd.DataFrame(rows)))


def test_seed_summary_mean_and_t_interval():
    values = {0: 0.2, 1: 0.5, 2: 0.8}
    reports = [_report(seed, [{"task": "forget_a", "split": "test", "forget_ratio": ratio},
                              {"task": "forget_b", "split": "test", "forget_ratio": 0.1 * seed}])
               for seed, ratio in values.items()]
    table = seed_summary(reports, "forget_ratio", 0.95).set_index("task")
    row = table.loc["forget_a"]
    assert row["n_seeds"] == 3 and row["forget_ratio_mean"] == pytest.approx(0.5)
    low, high = stats.t.interval(0.95, 2, loc=0.5, scale=stats.sem([0.2, 0.5, 0.8]))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    assert len(table) == 2  # one row per task
    pooled = Report("n100-pooled", None, 100, None, None, SimpleNamespace(metrics_all=None))
    assert seed_summary([*reports, pooled], "forget_ratio", 0.95).equals(seed_summary(reports, "forget_ratio", 0.95))


def test_seed_summary_one_seed_has_no_interval():
    table = seed_summary([_report(0, [{"task": "forget_a", "split": "test", "forget_ratio": 0.3}])], "forget_ratio",
                         0.95)
    assert table["forget_ratio_mean"][0] == pytest.approx(0.3) and math.isnan(table["ci_low"][0])


PLAN_BASE = {
    "model": {"name_or_path": "some/model"},
    "tasks": {"finetune": ["forget_cola", "forget_cb"], "forget": ["forget_cola"],
              "eval": ["forget_cola", "forget_cb"]},
    "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "features", "analyze"],
    "forget": {"num_examples": [100]},
}


def _plan(tmp_path, **changes):
    from lm_forget.run import build_plan, run_config_from_dict

    return build_plan(run_config_from_dict({**PLAN_BASE, "run_dir": str(tmp_path / "run"), **changes}))


def test_fine_tune_seeds_are_one_fine_tuned_model_each_and_cells_follow_their_own(tmp_path):
    plan = _plan(tmp_path, seeds={"finetune": [0, 1], "forget": [0, 1]})
    names = [s.name for s in plan.steps]
    for fs in (0, 1):
        step = plan.step(f"finetune/f{fs}")
        assert step.settings["train"]["seed"] == fs  # each fine-tune is seeded by its own seed
        assert plan.step(f"eval_finetuned/f{fs}").deps == (f"finetune/f{fs}",)
        assert plan.step(f"eval_forgetset/finetuned/f{fs}/n100").deps == (f"finetune/f{fs}",)
        assert plan.step(f"features/finetuned/f{fs}").deps == (f"finetune/f{fs}",)
        for seed in (0, 1):
            forget = plan.step(f"forget/forget_cola/n100/f{fs}s{seed}")
            assert forget.deps == (f"finetune/f{fs}",) and forget.settings["seed"] == seed
            assert f"eval_forget/forget_cola/n100/f{fs}s{seed}" in names
    assert "finetune" not in names and len(plan.cells) == 4  # 1 task x 1 size x 2 x 2 replicates
    # the two fine-tunes differ only in their seed; the same forget seed under two fine-tunes: two cells
    a, b = plan.step("finetune/f0"), plan.step("finetune/f1")
    assert a.key != b.key and {**a.settings["train"], "seed": 1} == b.settings["train"]
    assert plan.step("analyze").settings["finetune_seeds"] == [0, 1]


def test_a_list_of_seeds_is_the_forget_axis_and_keeps_every_key(tmp_path):
    listed = {s.name: s.key for s in _plan(tmp_path, seeds=[0, 1]).steps}
    mapped = {s.name: s.key for s in _plan(tmp_path, seeds={"forget": [0, 1]}).steps}
    assert listed == mapped and "finetune" in listed and "forget/forget_cola/n100/s1" in listed


@pytest.mark.parametrize(("changes", "needle"), [
    ({"seeds": {"finetune": [0, 0]}}, "seeds.finetune: [0, 0] has duplicates"),
    ({"seeds": {"forget": []}}, "seeds.forget: empty"),
    ({"seeds": {"finetune": [0, 1]}, "finetune": {"seed": 3}}, "keep seeds.finetune"),
    ({"seeds": {"finetune": [0, 1]}, "stages": ["eval_pretrained", "forget"]}, "needs the finetune stage"),
    ({"seeds": {"fintune": [0]}}, "fintune"),
])
def test_bad_seed_axes_fail_before_any_work(tmp_path, changes, needle):
    from lm_forget.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        _plan(tmp_path, **changes)
    assert needle in str(err.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.e2e
def test_two_fine_tune_seeds_by_two_forget_seeds_pool_into_the_headline(tmp_path):
    import json

    from lm_forget.demo.study import demo_settings, prepare, run_config
    from lm_forget.run import build_plan, execute, run_config_from_dict

    settings = demo_settings(quick=True, dynamics_points=0, relearn_k=[])
    shared = prepare(tmp_path / "shared", settings)
    data = run_config(tmp_path / "run", settings, shared)
    data["stages"] = ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "analyze"]
    data["seeds"] = {"finetune": [0, 1], "forget": [0, 1]}
    plan = build_plan(run_config_from_dict(data))
    assert execute(plan).count("ran") == len(plan.steps)

    # each forget pass starts from its own fine-tuned model; the two fine-tunes are different models
    for fs in (0, 1):
        for seed in (0, 1):
            state = json.loads((plan.step(f"forget/demo_review/n256/f{fs}s{seed}").output
                                / "forget_config.json").read_text())
            assert state["init_adapter"] == str(plan.step(f"finetune/f{fs}").output)
    f0, f1 = (plan.step(f"finetune/f{fs}").output / "model.safetensors" for fs in (0, 1))
    assert f0.read_bytes() != f1.read_bytes()

    out = plan.step("analyze").output
    index = (out / "index.md").read_text()
    assert "## Pooled over seeds (headline)" in index and "## Per replicate" in index
    # one per-replicate report per (fine-tune seed, forget seed), linked from the index
    assert {f"(n256-f{fs}s{seed}/index.md)" for fs in (0, 1) for seed in (0, 1)} == {
        line[line.index("]") + 1:] for line in index.splitlines() if line.startswith("- [forget-set size 256, seed f")}
    tests = pd.read_csv(out / "n256-pooled" / "tests_task_level.csv")
    head = tests[tests["role"] == "primary"]
    # one forgotten task: no task-level statistic (n = 1), said so; the interval itself is tested on planted data
    assert len(head) and (head["outcome"] == "forget_ratio (mean of 4 replicates: 2 fine-tune x 2 forget seeds)").all()
    assert head["statistic"].isna().all() and (head["equivalence"] == "no CI").all()
    assert set(tests.loc[tests["role"].str.startswith("sensitivity (seed"), "role"]) == {
        f"sensitivity (seed n256-f{fs}s{seed})" for fs in (0, 1) for seed in (0, 1)}


def test_set_reaches_inside_the_seeds_shorthand(tmp_path):
    from lm_forget.run.config import load_run_config

    path = tmp_path / "study.yaml"
    path.write_text("model: {name_or_path: some/model}\nseeds: [0, 1, 2]\n"
                    "tasks: {finetune: [forget_cola], forget: [forget_cola], eval: [forget_cola]}\n")
    config = load_run_config(path, sets=["seeds.finetune=[0, 1]"])
    assert config.forget_seeds == [0, 1, 2] and config.finetune_seeds == [0, 1]
    assert load_run_config(path, sets=["seeds.forget=[5]"]).forget_seeds == [5]


@pytest.mark.parametrize("section", ["forget", "relearn"])
def test_a_section_seed_the_runner_would_ignore_is_refused(tmp_path, section):
    from lm_forget.errors import ConfigError
    from lm_forget.run.config import load_run_config

    path = tmp_path / "study.yaml"
    path.write_text("model: {name_or_path: some/model}\n"
                    "tasks: {finetune: [forget_cola], forget: [forget_cola], eval: [forget_cola]}\n"
                    f"{section}: {{seed: 7}}\n")
    with pytest.raises(ConfigError, match=rf"{section}\.seed: 7 would be ignored.*seeds: \[7\]"):
        load_run_config(path)
