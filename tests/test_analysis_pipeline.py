"""``analyze`` on synthetic lm-eval folders (the exact on-disk format) with a planted task-level effect."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lm_forget.analysis.api import analyze, merge_matrix
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.cli import main as cli_main

N_TASKS, N_DOCS = 10, 200


def write_phase(root: Path, model: str, docs: dict[str, list[tuple[str, int, float, bool]]]) -> Path:
    """An lm-eval 0.4 output folder: results JSON + samples JSONL, loglikelihoods as strings."""
    folder = root / model.replace("/", "__")
    folder.mkdir(parents=True)
    ts = "2026-01-01T00-00-00.000001"
    results = {"results": {}, "configs": {}, "model_name": model}
    for task, rows in docs.items():
        results["configs"][task] = {"task": task, "output_type": "multiple_choice"}
        lines = []
        for i, (doc_id, label, p_gold, correct) in enumerate(rows):
            ll = [0.0, 0.0]
            ll[label], ll[1 - label] = math.log(p_gold), math.log(1 - p_gold)
            doc = {"id": doc_id, "task": task, "split": "test", "prompt": "q", "choices": ["a", "b"],
                   "label": label, "continuation": "", "target_delimiter": " "}
            lines.append(json.dumps({"doc_id": i, "doc": doc, "target": str(label),
                                     "resps": [[[str(x), "False"]] for x in ll],
                                     "filtered_resps": [[str(x), "False"] for x in ll], "acc": float(correct)}))
        (folder / f"samples_{task}_{ts}.jsonl").write_text("\n".join(lines) + "\n")
    (folder / f"results_{ts}.json").write_text(json.dumps(results))
    return root


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Fine-tuned confidence varies by task; low confidence -> larger forget ratio (planted, r ~ -0.95)."""
    root = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(0)
    conf = np.linspace(0.6, 0.95, N_TASKS)
    ratio = np.clip(1.5 - 1.5 * conf + rng.normal(0, 0.03, N_TASKS), 0, 1)
    phases = {"pretrained": {}, "finetuned": {}, "forget": {}}
    for t in range(N_TASKS):
        task = f"forget_t{t}"
        acc_ft, acc_fg = 0.9, 0.9 - ratio[t] * 0.4
        labels = rng.integers(0, 2, N_DOCS)
        ids = [f"{task}/test/{i:04d}" for i in range(N_DOCS)]
        n_ft, n_fg = round(acc_ft * N_DOCS), round(acc_fg * N_DOCS)
        order = rng.permutation(N_DOCS)
        ft_ok = np.zeros(N_DOCS, bool)
        ft_ok[order[:n_ft]] = True
        fg_ok = np.zeros(N_DOCS, bool)
        fg_ok[order[:n_fg]] = True  # forgotten docs = the last ones the fine-tuned model got right
        pre_p = rng.uniform(0.3, 0.7, N_DOCS)
        phases["pretrained"][task] = [(i, int(y), p, p > 0.5) for i, y, p in zip(ids, labels, pre_p, strict=True)]
        phases["finetuned"][task] = [(i, int(y), conf[t] if ok else 1 - conf[t], bool(ok))
                                     for i, y, ok in zip(ids, labels, ft_ok, strict=True)]
        phases["forget"][task] = [(i, int(y), 0.55 if ok else 0.45, bool(ok))
                                  for i, y, ok in zip(ids, labels, fg_ok, strict=True)]
    return {name: write_phase(root / name, f"model-{name}", docs) for name, docs in phases.items()}


@pytest.mark.e2e
def test_planted_effect_recovered_through_the_pipeline(planted, tmp_path):
    opts = AnalysisOptions(n_bootstrap=300, n_permutations=300, formats=("png",))
    out = analyze(**planted, out=tmp_path / "report", options=opts)
    tests = json.loads((out / "tests_task_level.json").read_text())
    by = {(t["predictor"], t["method"]): t for t in tests}
    pearson = by[("confidence_finetuned", "pearson")]
    assert pearson["n"] == N_TASKS and pearson["statistic"] < -0.8 and pearson["role"] == "sensitivity"
    assert pearson["ci_low"] < pearson["statistic"] < pearson["ci_high"] < 0
    assert pearson["p"] < 0.05 and pearson["p_holm"] is None  # sensitivity rows are not in the family
    spearman = by[("confidence_finetuned", "spearman")]
    assert spearman["role"] == "primary" and spearman["p_holm"] < 0.05
    assert "small n=10" not in pearson["note"]
    assert by[("accuracy_finetuned", "pearson")]["note"] == "skipped: a variable is constant"
    assert by[("confidence_pretrained", "spearman")]["p_holm"] > 0.05  # no planted effect
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(m["behaviour"] in {"partial", "to_pretrained", "kept", "inconclusive"} for m in metrics)
    assert all(m["forget_ratio_lo"] <= m["forget_ratio"] <= m["forget_ratio_hi"] for m in metrics)
    assert {m["acc_finetuned"] for m in metrics} == {0.9}
    md = (out / "index.md").read_text()
    assert "confidence_finetuned vs forget_ratio (n=10 tasks): Spearman rho = -1.00" in md
    assert "significant at alpha = 0.05" in md
    examples = json.loads((out / "tests_example_level.json").read_text())
    assert {e["predictor"] for e in examples} == {"confidence_pretrained", "confidence_finetuned"}


@pytest.mark.e2e
def test_cli_matrix_and_merge(planted, tmp_path):
    shard = tmp_path / "shard"
    shard.mkdir()
    rows = ["trained_task,eval_task,acc_forget"]
    rows += [f"forget_t{a},forget_t{b},{0.55 + 0.03 * b + 0.001 * a}" for a in range(4) for b in range(N_TASKS)]
    (shard / "matrix.csv").write_text("\n".join(rows) + "\n")
    merged = merge_matrix([shard], tmp_path / "merged")
    out = tmp_path / "report"
    code = cli_main(["analyze", "--pretrained", str(planted["pretrained"]), "--finetuned", str(planted["finetuned"]),
                     "--forget", str(planted["forget"]), "--matrix", str(merged.parent), "--out", str(out),
                     "--n-bootstrap", "100", "--n-permutations", "100", "--formats", "png", "--correction", "bh",
                     "--predictors", "confidence"])
    assert code == 0
    summary = json.loads((out / "matrix_summary.json").read_text())
    assert summary["n_rows"] == 4 and summary["col_share"] > 0.95
    assert "Both say the evaluated task matters more" in (out / "index.md").read_text()
    tested = {t["predictor"] for t in json.loads((out / "tests_task_level.json").read_text())}
    assert tested == {"confidence_pretrained", "confidence_finetuned"}
    assert cli_main(["analyze", "--pretrained", str(planted["pretrained"]), "--finetuned", str(planted["finetuned"]),
                     "--forget", str(planted["forget"]), "--out", str(out), "--predictors", "nope"]) == 2
    assert cli_main(["analyze", "--pretrained", str(tmp_path / "none"), "--finetuned", "x", "--forget", "y",
                     "--out", str(out)]) == 2


@pytest.mark.e2e
def test_predictor_registry_is_extensible(planted, tmp_path):
    from lm_forget.analysis import registry

    assert {"confidence", "difficulty", "variance"} <= set(registry.predictors())

    @registry.register("test_constant_rank")
    def rank(ctx):
        return [registry.PredictorValues("task_index", "task", "index of the task",
                                         {t: float(t[-1]) for t in ctx.metrics["task"]})]

    try:
        out = analyze(**planted, out=tmp_path / "r", options=AnalysisOptions(
            predictors=("test_constant_rank",), n_bootstrap=50, n_permutations=50, formats=("png",)))
        tests = json.loads((out / "tests_task_level.json").read_text())
        assert {t["predictor"] for t in tests} == {"task_index"}
        assert (out / "figures" / "scatter_task_index.png").is_file()
    finally:
        registry._REGISTRY.pop("test_constant_rank")
