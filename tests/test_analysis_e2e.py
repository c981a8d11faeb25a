"""``analyze`` end to end on real ``lm_eval --log_samples`` output (conftest.lmeval_phases), through its CLI."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path

import pytest
from studies import PHASE_TASKS, run_cli

from lm_forget.analysis.api import analyze, extract_features
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.samples import parse_sample, read_phase
from lm_forget.errors import DataError

TASKS = ",".join(PHASE_TASKS)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

@pytest.fixture(scope="module")
def env(mirror_dir, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "lm_forget_cache"  # shared with the features tests
    mp = pytest.MonkeyPatch()
    mp.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    mp.setenv("LM_FORGET_CACHE", str(cache))
    yield dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    mp.undo()


@pytest.fixture(scope="module")
def evals(lmeval_phases, env) -> Path:
    """The session's lm_eval phase folders (conftest.lmeval_phases: TASKS, 30 docs, two random adapters)."""
    return lmeval_phases


@pytest.mark.e2e
@pytest.mark.xdist_group("lmeval_phases")
def test_analyze_cli_on_real_lm_eval_output(evals, tiny_model_dir, env, tmp_path):
    feats = extract_features(str(tiny_model_dir), peft=str(evals / "adapter_ft"), tasks=TASKS.split(","),
                             out=tmp_path / "feats" / "ft", role="finetuned", limit=20, probes=True,
                             probe_layers=[1, 3], device="cpu")
    matrix = tmp_path / "matrix"  # 2 x 2: rows stand for "forgot cola" / "forgot openbookqa"
    shutil.copytree(evals / "forget", matrix / "forget_cola")
    shutil.copytree(evals / "pretrained", matrix / "forget_openbookqa")
    out = tmp_path / "report"
    proc = run_cli("analyze", "--pretrained", str(evals / "pretrained"), "--finetuned", str(evals / "finetuned"),
                   "--forget", str(evals / "forget"), "--features", str(feats.parent), "--matrix", str(matrix),
                   "--out", str(out), "--n-bootstrap", "200", "--n-permutations", "200", "--min-n-test", "3")
    assert proc.code == 0, proc.stderr[-3000:]
    assert "report:" in proc.stdout

    metrics = json.loads((out / "metrics.json").read_text())
    assert {m["task"] for m in metrics} == set(TASKS.split(","))
    phase = read_phase(evals / "forget")
    for m in metrics:  # accuracies agree with what lm_eval itself reported
        results = json.loads(next((evals / "forget").rglob("results_*.json")).read_text())
        assert m["acc_forget"] == pytest.approx(results["results"][m["task"]]["acc,none"])
        assert m["n"] == 30 and 0 <= m["acc_forget_lo"] <= m["acc_forget"] <= m["acc_forget_hi"] <= 1
    assert len(phase.rows) == 60
    tests = json.loads((out / "tests_task_level.json").read_text())
    assert {t["predictor"] for t in tests} >= {"confidence_pretrained", "confidence_finetuned",
                                                "accuracy_finetuned", "accuracy_pretrained", "variance_finetuned"}
    assert all("skipped" in t["note"] for t in tests)  # n = 2 tasks: no test means anything
    # a 30-doc random adapter is rarely reliably above chance: ratios may be undefined, and must then say why
    cells = list(csv.DictReader((out / "matrix_long.csv").open()))
    assert len(cells) == 4 and all(float(c["forget_drop_lo"]) <= float(c["forget_drop"]) <= float(c["forget_drop_hi"])
                                   for c in cells)
    defined = [c for c in cells if c["forget_ratio"] not in ("", "nan")]
    assert all(c["ratio_note"].startswith("undefined") for c in cells if c not in defined)
    summary = json.loads((out / "matrix_summary.json").read_text())
    assert summary["n_rows"] * summary["n_cols"] <= len(defined)
    probes = json.loads((out / "probes.json").read_text())
    assert {p["layer"] for p in probes} == {1, 3} and all("model_acc" in p for p in probes)

    md = (out / "index.md").read_text()
    html = (out / "index.html").read_text()
    figures = sorted((out / "figures").glob("*.png"))
    names = {f.stem for f in figures}
    assert {"accuracy_bars", "confidence_hist", "matrix_heatmap", "probe_by_layer",
            "scatter_variance_finetuned"} <= names
    for png in figures:
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
        assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
        assert f"](figures/{png.name})" in md
    assert html.count("data:image/png;base64,") == len(figures)
    assert "margin = 0.1" in md and "Choices beyond the paper" in md
    feats_table = json.loads((out / "features.json").read_text())
    assert {(f["role"], f["task"]) for f in feats_table} == {("finetuned", t) for t in TASKS.split(",")}


@pytest.mark.e2e
@pytest.mark.xdist_group("lmeval_phases")
def test_bad_inputs_name_the_file(evals, tmp_path):
    phases = {p: evals / p for p in ("pretrained", "finetuned", "forget")}
    opts = AnalysisOptions(n_bootstrap=50, n_permutations=50, formats=("png",))

    with pytest.raises(DataError, match=str(tmp_path / "nowhere")):
        analyze(**(phases | {"forget": tmp_path / "nowhere"}), out=tmp_path / "r0", options=opts)

    corrupt = tmp_path / "corrupt"
    shutil.copytree(phases["forget"], corrupt)
    samples = next(corrupt.rglob("samples_forget_cola_*.jsonl"))
    with samples.open("a") as fh:
        fh.write('{"doc_id": 99, "doc": {"id"\n')
    with pytest.raises(DataError, match=rf"{samples}:31: corrupt samples line"):
        analyze(**(phases | {"forget": corrupt}), out=tmp_path / "r1", options=opts)

    fewer = tmp_path / "fewer"  # the forget phase lacks forget_openbookqa
    shutil.copytree(phases["forget"], fewer)
    results = next(fewer.rglob("results_*.json"))
    data = json.loads(results.read_text())
    del data["configs"]["forget_openbookqa"]
    results.write_text(json.dumps(data))
    with pytest.raises(DataError, match=rf"different tasks: .*{phases['pretrained']}.*forget_openbookqa"):
        analyze(**(phases | {"forget": fewer}), out=tmp_path / "r2", options=opts)

    missing = tmp_path / "missing"
    shutil.copytree(phases["forget"], missing)
    next(missing.rglob("samples_forget_cola_*.jsonl")).unlink()
    with pytest.raises(DataError, match=r"results_.*\.json lists task 'forget_cola' but samples_forget_cola_"):
        analyze(**(phases | {"forget": missing}), out=tmp_path / "r3", options=opts)

    with pytest.raises(DataError, match="--split"):
        analyze(**phases, out=tmp_path / "r4", options=AnalysisOptions(split="train"))


def test_parse_plain_lm_eval_sample():
    sample = {"doc_id": 3, "doc": {"question": "q"}, "target": "1",
              "filtered_resps": [["-2.0", "False"], ["-1.0", "True"], ["-3.0", "False"]], "acc": 1.0}
    row = parse_sample(sample, "arc_easy", "x.jsonl:1")
    assert row["doc_id"] == "arc_easy/3" and row["split"] == "test" and row["label"] == 1 and row["correct"]
    e = math.e
    assert row["p_gold"] == pytest.approx(e**-1 / (e**-2 + e**-1 + e**-3), rel=1e-12)
    with pytest.raises(DataError, match="x.jsonl:1: label 5 out of range"):
        parse_sample(sample | {"target": "5"}, "arc_easy", "x.jsonl:1")


def _with_train_run(src: Path, dest: Path) -> Path:
    """A copy of a phase folder plus a later run scoring the same docs as the forget pool (split train)."""
    shutil.copytree(src, dest)
    for results in list(dest.rglob("results_*.json")):
        ts = results.stem[len("results_"):]
        twin = results.with_name(f"results_{ts}-train.json")
        shutil.copyfile(results, twin)
        for samples in results.parent.glob(f"samples_*_{ts}.jsonl"):
            lines = []
            for line in samples.read_text().splitlines():
                sample = json.loads(line)
                sample["doc"]["split"] = "train"
                sample["doc"]["id"] = sample["doc"]["id"].replace("/test/", "/train/")
                lines.append(json.dumps(sample))
            samples.with_name(samples.name.replace(ts, f"{ts}-train")).write_text("\n".join(lines) + "\n")
    return dest


@pytest.mark.e2e
@pytest.mark.xdist_group("lmeval_phases")
def test_test_and_train_runs_share_a_folder(evals, tmp_path):
    phases = {p: _with_train_run(evals / p, tmp_path / p) for p in ("pretrained", "finetuned", "forget")}
    assert {r["split"] for r in read_phase(phases["forget"]).rows} == {"test", "train"}
    out = analyze(**phases, out=tmp_path / "report",
                  options=AnalysisOptions(split="train", n_bootstrap=50, n_permutations=50, formats=("png",)))
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted((m["task"], m["split"]) for m in metrics) == sorted(
        (t, s) for t in TASKS.split(",") for s in ("test", "train"))
    by = {(m["task"], m["split"]): m for m in metrics}
    assert by[("forget_cola", "train")]["acc_forget"] == by[("forget_cola", "test")]["acc_forget"]
