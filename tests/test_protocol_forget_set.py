"""Every study scores the forget set: exactly the docs each forget model was trained on, for the pretrained,
fine-tuned and forget models, beside held-out and other-task accuracy (real mirror data, real stories260K)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.protocol_report import (
    BOUND_COLUMNS,
    ProtocolCell,
    chance_verdict,
    forget_set_data,
    protocol_rows,
    render_forget_set,
    scored_accuracy,
)
from lm_forget.run import build_plan, execute, run_config_from_dict
from lm_forget.run.cells import forget_set_name

pytestmark = pytest.mark.e2e

TASKS = ["forget_cola", "forget_openbookqa"]
TRAIN = {"use_lora": True, "learning_rate": 1e-3, "max_steps": 2, "per_device_train_batch_size": 4,
         "lora_r": 4, "lora_alpha": 8, "save_steps": 50, "max_length": 128}
N = 12


def _sample_ids(folder: Path, task: str) -> list[str]:
    (path,) = folder.rglob(f"samples_{task}_*.jsonl")
    return [json.loads(line)["doc"]["id"] for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_model_dir, mirror_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
        config = run_config_from_dict({
            "run_dir": str(tmp_path_factory.mktemp("protocol") / "run"),
            "model": {"name_or_path": str(tiny_model_dir), "dtype": "float32"},
            "tasks": {"finetune": TASKS, "forget": ["forget_cola"], "eval": TASKS},
            "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "analyze"],
            "seeds": [0],
            "finetune": {**TRAIN, "num_examples": 8, "dynamics_every": 1},
            "forget": {**TRAIN, "num_examples": [N], "dynamics_every": 1},
            "eval": {"limit": 5, "batch_size": 16},  # held-out limited; the forget set is scored whole
            "threads": 1,
        })
        plan = build_plan(config)
        execute(plan)
        yield plan


def test_forget_set_is_exactly_the_trained_docs(study):
    from lm_forget.data.api import load_docs

    cid = f"forget_cola/n{N}/s0"
    trained = [json.loads(line)["id"] for line in
               (study.step(f"forget/{cid}").output / "labels.jsonl").read_text().splitlines()]
    assert len(trained) == N
    assert trained == [d["id"] for d in load_docs("forget_cola", "train")[:N]]  # pools nest
    for name in (forget_set_name("pretrained", N), forget_set_name("finetuned", N),
                 forget_set_name("forget", N, cid)):
        assert _sample_ids(study.step(name).output, "forget_cola") == trained, name
    # the held-out evaluation of the same cell scores other docs (the test split), limited as configured
    held = _sample_ids(study.step(f"eval_forget/{cid}").output, "forget_cola")
    assert len(held) == 5 and not set(held) & set(trained)


def test_report_tabulates_forget_set_held_out_and_other_tasks(study):
    import pandas as pd

    out = study.step("analyze").output
    index = (out / "index.md").read_text()
    assert "## Forget set vs held-out" in index
    table = pd.read_csv(out / "protocol" / "forget_set.csv")
    (row,) = table.to_dict("records")
    assert (row["task"], row["n"], row["seed"]) == ("forget_cola", N, 0)
    for phase in ("pretrained", "finetuned", "forget"):
        assert row[f"forget_set_{phase}_n"] == N
        assert row[f"held_out_{phase}_n"] == 5
        assert row[f"forget_set_{phase}_acc_lo"] <= row[f"forget_set_{phase}_acc"] <= row[f"forget_set_{phase}_acc_hi"]
    assert row["other_tasks_forget_n"] == 5  # forget_openbookqa, scored by the model that forgot cola
    assert row["forget_set_verdict"] == chance_verdict(
        {k: row[f"forget_set_forget_{column}"] for k, column in BOUND_COLUMNS.items()})


def _planted(folder: Path, task: str, correct: list[int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"doc_id": i, "doc": {"id": f"{task}/train/{i}"}, "acc": float(c)} for i, c in enumerate(correct)]
    (folder / f"samples_{task}_2026-01-01T00-00-00.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_verdicts_and_flag_on_planted_outputs(tmp_path):
    # 400 docs at exactly 50%: TOST within 0.5 +- 0.1 (the default margin) passes
    near = scored_accuracy([1, 0] * 200)
    assert chance_verdict(near) == "near chance"
    assert chance_verdict(scored_accuracy([1] * 90 + [0] * 10)) == "did not take"
    assert chance_verdict(scored_accuracy([1, 0] * 5)) == "needs >= 84 docs"  # no 10 docs could be called near chance
    assert chance_verdict(scored_accuracy([])).startswith("undefined")

    cells = [ProtocolCell("t_kept", 100, 0, forget_set={"forget": _planted(tmp_path / "a", "t_kept", [1] * 90 +
                                                                              [0] * 10)}),
             ProtocolCell("t_gone", 400, 0, forget_set={"forget": _planted(tmp_path / "b", "t_gone", [1, 0] * 200)})]
    output = forget_set_data([(None, protocol_rows(cells))], tmp_path / "report", tmp_path)
    lines = "\n".join(render_forget_set(output, AnalysisOptions()))
    assert "t_kept (N=100, seed 0): forgetting did not take: forget-set accuracy 0.900 [0.826, 0.945]" in lines
    assert list(output.tables["forget_set"]["task"]) == ["t_kept", "t_gone"]
    assert "t_gone (N=400" not in lines.split("| t_gone")[0]  # only the failed pass is flagged
    assert "not evaluated" in lines  # phases without outputs say so, no number is invented


def test_dynamics_recorded_in_both_phases_and_reported(study):
    import pandas as pd

    cid = f"forget_cola/n{N}/s0"
    learn = pd.read_parquet(study.step("finetune").output / "dynamics.parquet")
    forget = pd.read_parquet(study.step(f"forget/{cid}").output / "dynamics.parquet")
    trained = [json.loads(line)["id"] for line in
               (study.step(f"forget/{cid}").output / "labels.jsonl").read_text().splitlines()]
    assert set(learn["phase"]) == {"finetune"} and set(forget["phase"]) == {"forget"}
    assert sorted(learn["step"].unique()) == sorted(forget["step"].unique()) == [0, 1, 2]  # every step
    # the fine-tune pass scores the forget pool (not its own 8 training docs), the forget pass its trained docs
    assert set(learn["doc_id"]) == set(forget["doc_id"]) == set(trained)
    out = study.step("analyze").output
    assert "## Learning order vs forgetting order" in (out / "index.md").read_text()
    stats = pd.read_csv(out / "protocol" / f"dynamics-n{N}-s0" / "order_stats.csv").set_index("task")
    assert stats.loc["forget_cola", "n_docs"] == N and not stats.loc["forget_cola", "in_pooled"]
    assert "undefined" in stats.loc["pooled", "note"]  # 12 docs < 100: no pooled statistic is invented
