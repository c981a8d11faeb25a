"""Utility tasks (``tasks.utility``): any lm-eval task scored before and after forgetting, with lm-eval's metrics."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
from test_run_relearn import BASE, KEYS_AT_SCHEMA

from lm_forget.errors import ConfigError
from lm_forget.run import build_plan, execute, run_config_from_dict


def write_utility_tasks(folder: Path, mirror: Path) -> Path:
    """Offline lm-eval tasks over local jsonl (HF schema): ARC-Easy (4 choices, not binarized; acc, acc_norm and
    mcc, a corpus metric) and a group over SST-2 (a group's aggregate has no per-doc samples of its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "util_arc_easy.yaml").write_text(f"""\
task: util_arc_easy
dataset_path: json
dataset_kwargs:
  data_files: {{test: {mirror / "allenai/ai2_arc/ARC-Easy/test.jsonl"}}}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{choices.label.index(answerKey)}}}}"
doc_to_choice: "{{{{choices.text}}}}"
metric_list:
  - {{metric: acc, aggregation: mean, higher_is_better: true}}
  - {{metric: acc_norm, aggregation: mean, higher_is_better: true}}
  - {{metric: mcc, aggregation: matthews_corrcoef, higher_is_better: true}}
""", encoding="utf-8")
    (folder / "util_sst2.yaml").write_text(f"""\
task: util_sst2
dataset_path: json
dataset_kwargs:
  data_files: {{test: {mirror / "nyu-mll/glue/sst2/validation.jsonl"}}}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{sentence}}}}\\nQuestion: Is this sentence positive or negative?\\nAnswer:"
doc_to_target: label
doc_to_choice: [negative, positive]
metric_list:
  - {{metric: acc, aggregation: mean, higher_is_better: true}}
""", encoding="utf-8")
    (folder / "util_glue.yaml").write_text("""\
group: util_glue
task: [util_sst2]
aggregate_metric_list:
  - {metric: acc, aggregation: mean, weight_by_size: true}
""", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory, mirror_dir) -> Path:
    return write_utility_tasks(tmp_path_factory.mktemp("utility_tasks"), mirror_dir)


def _data(tmp_path, task_dir, utility=None, **changes) -> dict:
    data = copy.deepcopy(BASE)
    data["run_dir"] = str(tmp_path / "run")
    data["tasks"]["task_dirs"] = [str(task_dir)]
    if utility is not None:
        data["tasks"]["utility"] = utility
    data.update(changes)
    return data


def test_default_is_no_utility_task_and_no_plan_change(tmp_path, task_dir):
    config = run_config_from_dict(_data(tmp_path, task_dir))
    assert config.tasks.utility == []
    plan = build_plan(config)
    assert not [s for s in plan.steps if "utility" in s.name or s.dir.parent.name == "eval_utility"]
    without_dirs = copy.deepcopy(BASE) | {"run_dir": str(tmp_path / "run")}
    assert {s.name: s.key for s in build_plan(run_config_from_dict(without_dirs)).steps} == KEYS_AT_SCHEMA
    explicit = _data(tmp_path, task_dir, utility=[])
    assert [(s.name, s.key) for s in build_plan(run_config_from_dict(explicit)).steps] == [
        (s.name, s.key) for s in plan.steps]


def test_plan_adds_one_utility_eval_per_model(tmp_path, task_dir):
    base = build_plan(run_config_from_dict(_data(tmp_path, task_dir)))
    plan = build_plan(run_config_from_dict(_data(tmp_path, task_dir, utility=["util_arc_easy", "util_glue"])))
    added = [s for s in plan.steps if s.name.startswith("eval_utility/")]
    cells = sorted({s.cell.id for s in base.steps if s.stage == "forget"})
    assert len(cells) == 8  # 2 tasks x 2 sizes x 2 seeds
    assert sorted(s.name for s in added) == sorted(
        ["eval_utility/pretrained", "eval_utility/finetuned", *(f"eval_utility/{c}" for c in cells)])
    assert plan.step("eval_utility/pretrained").deps == ()
    assert plan.step("eval_utility/finetuned").deps == ("finetune",)
    for cid in cells:
        step = plan.step(f"eval_utility/{cid}")
        assert step.deps == (f"forget/{cid}",) and step.cell.id == cid and step.kind == "eval"
        assert step.settings["tasks"] == ["util_arc_easy", "util_glue"] and step.dir.parent.name == "eval_utility"
    assert set(plan.step("analyze").deps) >= {s.name for s in added}
    # nothing else changes: every existing step keeps its key but analyze (it reads the utility evals)
    keys = {s.name: s.key for s in plan.steps}
    assert {s.name: s.key for s in base.steps if s.name != "analyze"} == {
        s.name: keys[s.name] for s in base.steps if s.name != "analyze"}
    assert keys["analyze"] != base.step("analyze").key


def test_per_task_and_finetune_seed_axes_name_each_finetuned_model(tmp_path, task_dir):
    data = _data(tmp_path, task_dir, utility=["util_arc_easy"], seeds={"finetune": [0, 1], "forget": [0]},
                 finetune={"per_task": True})
    data["tasks"].pop("finetune")
    plan = build_plan(run_config_from_dict(data))
    names = {s.name: s for s in plan.steps if s.name.startswith("eval_utility/finetuned")}
    assert sorted(names) == sorted(f"eval_utility/finetuned/{t}/f{fs}" for t in ("forget_cola", "forget_cb")
                                   for fs in (0, 1))
    assert names["eval_utility/finetuned/forget_cb/f1"].deps == ("finetune/forget_cb/f1",)
    assert plan.step("eval_utility/forget_cb/n100/f1s0").deps == ("forget/forget_cb/n100/f1s0",)


@pytest.mark.parametrize(("utility", "expected"), [
    (["forget_boolq"], "'forget_boolq' is a forget suite task"),
    (["forget"], "'forget' is or holds (forget_arc_challenge, forget_arc_easy, forget_boolq, ...) a forget suite"),
    (["lm_forget_suite"], "'lm_forget_suite' is or holds"),
    (["suite"], "'suite' is the forget suite"),
])
def test_forget_suite_tasks_are_refused(tmp_path, task_dir, utility, expected):
    with pytest.raises(ConfigError) as info:
        run_config_from_dict(_data(tmp_path, task_dir, utility=utility))
    assert expected in str(info.value) and "tasks.utility" in str(info.value)


def test_unknown_utility_task_fails_with_did_you_mean(tmp_path, task_dir):
    # a typo of a built-in: lm-eval's own index of built-in tasks is searched (no Hub needed)
    with pytest.raises(ConfigError) as info:
        run_config_from_dict(_data(tmp_path, task_dir, utility=["util_arc_easy", "hellaswg"]))
    assert "tasks.utility: unknown lm-eval task 'hellaswg'. Did you mean 'hellaswag'?" in str(info.value)
    assert not (tmp_path / "run").exists()


def test_utility_needs_an_eval_stage(tmp_path, task_dir):
    with pytest.raises(ConfigError, match="scored by the eval stages"):
        run_config_from_dict(_data(tmp_path, task_dir, utility=["util_arc_easy"], stages=["finetune", "forget"]))


def _per_doc(output: Path, task: str, metric: str) -> dict:
    from lm_forget.formats import lm_eval_run, samples_file
    from lm_forget.io import iter_jsonl

    path, _ = lm_eval_run(output)
    return {(r["doc_id"], r["doc_hash"]): r[metric] for _, _, r in iter_jsonl(samples_file(path, task))}


@pytest.mark.e2e
def test_utility_section_with_stories260k(tmp_path, task_dir, tiny_model_dir, mirror_dir, monkeypatch):
    import numpy as np
    import pandas as pd
    from scipy import stats

    from lm_forget.formats import lm_eval_run

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    # lm-eval's stderr of mcc is its bootstrap, in a process pool unless DISABLE_MULTIPROC (seconds on 2 cores)
    monkeypatch.setenv("DISABLE_MULTIPROC", "1")
    train = {"use_lora": True, "learning_rate": 1e-2, "max_steps": 3, "per_device_train_batch_size": 4,
             "lora_r": 4, "lora_alpha": 8, "save_steps": 50, "max_length": 128}
    docs = 24
    data = {
        "run_dir": str(tmp_path / "run"),
        "model": {"name_or_path": str(tiny_model_dir), "dtype": "float32"},
        "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola"], "eval": ["forget_cola"],
                  "task_dirs": [str(task_dir)], "utility": ["util_arc_easy", "util_glue"]},
        "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "analyze"],
        "finetune": {**train, "num_examples": 8},
        "forget": {**train, "num_examples": [8]},
        "eval": {"limit": docs, "batch_size": 16},
        "analysis": {"options": {"n_bootstrap": 1000}},
        "threads": 1,
    }
    plan = build_plan(run_config_from_dict(data))
    execute(plan)
    cid = "forget_cola/n8/s0"
    analyze = plan.step("analyze")
    index = (analyze.output / "index.md").read_text()
    assert "## Utility tasks (collateral damage)" in index and "| forget_cola | 8 | 0 | util_arc_easy | acc |" in index
    table = pd.read_csv(analyze.output / "utility" / "utility.csv")
    assert sorted(zip(table["utility_task"], table["metric"], strict=True)) == [
        ("util_arc_easy", "acc"), ("util_arc_easy", "acc_norm"), ("util_arc_easy", "mcc"), ("util_glue", "acc")]
    rows = table.set_index(["utility_task", "metric"])
    # lm-eval's own aggregates, read back from each phase's results
    for phase, step in (("finetuned", "eval_utility/finetuned"), ("forget", f"eval_utility/{cid}"),
                        ("pretrained", "eval_utility/pretrained")):
        _, results = lm_eval_run(plan.step(step).output)
        for (task, metric), row in rows.iterrows():
            assert row[phase] == pytest.approx(results["results"][task][f"{metric},none"])
    for metric in ("acc", "acc_norm", "mcc"):  # leaf task: paired over the same docs, lm-eval's aggregation
        row = rows.loc[("util_arc_easy", metric)]
        assert row["ci"] == "paired bootstrap over docs" and row["docs"] == docs
        assert row["change"] == pytest.approx(row["forget"] - row["finetuned"])
        assert row["change_lo"] <= row["change"] <= row["change_hi"]
    # the accuracy change's interval agrees with scipy's paired percentile bootstrap of the per-doc differences
    before = _per_doc(plan.step("eval_utility/finetuned").output, "util_arc_easy", "acc")
    after = _per_doc(plan.step(f"eval_utility/{cid}").output, "util_arc_easy", "acc")
    assert before.keys() == after.keys() and len(before) == docs
    diffs = np.array([after[k] - before[k] for k in before], dtype=float)
    assert diffs.any(), "the forget pass changed no ARC-Easy answer: the interval check below would be vacuous"
    ref = stats.bootstrap((diffs,), np.mean, n_resamples=5000, method="percentile", random_state=0)
    row = rows.loc[("util_arc_easy", "acc")]
    assert row["change"] == pytest.approx(diffs.mean())
    step = 1.5 / docs  # percentile endpoints move in steps of 1/docs between two bootstrap generators
    assert row["change_lo"] == pytest.approx(ref.confidence_interval.low, abs=step)
    assert row["change_hi"] == pytest.approx(ref.confidence_interval.high, abs=step)
    group = rows.loc[("util_glue", "acc")]  # a group's aggregate: lm-eval's stderr of both phases
    assert group["ci"] == "lm-eval stderr (normal, unpaired)" and math.isnan(group["docs"])
    _, results = lm_eval_run(plan.step(f"eval_utility/{cid}").output)
    se = results["results"]["util_glue"]["acc_stderr,none"]
    assert isinstance(se, float) and group["change_hi"] - group["change"] > 1.96 * se


def test_patterns_expand_through_lm_eval(tmp_path, task_dir):
    config = run_config_from_dict(_data(tmp_path, task_dir, utility=["util_a*", "util_glue", "util_arc_easy"]))
    assert config.tasks.utility == ["util_arc_easy", "util_glue"]  # expanded, duplicates dropped, order kept
    with pytest.raises(ConfigError, match=r"'forget_c\w+' \(from 'forget_c\*'\) is a forget suite task"):
        run_config_from_dict(_data(tmp_path, task_dir, utility=["forget_c*"]))
