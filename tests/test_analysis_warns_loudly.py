"""Analysis inputs that used to give a silently wrong report now warn loudly or are refused.

- NaN loglikelihoods (a diverged model) gave blank confidences and no warning: the report's summary (and the
  log) now names the task, the count and the folder;
- a phase folder holding two runs of the same task silently used the newer file name: it warns, naming both;
- ``--margin nan`` and other NaN/inf/negative margins changed verdicts: refused, exit 2, nothing written.

Planted lm-eval output folders (lm_forget.analysis.simulate), analysed through the real CLI.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from lm_forget.analysis.simulate import TS, correlated_tasks, simulate_phases, write_study
from lm_forget.cli import main

FAST = ["--n-bootstrap", "50", "--n-permutations", "50", "--n-power", "20", "--formats", "png",
        "--predictors", "confidence"]


@pytest.fixture
def study(tmp_path) -> dict[str, Path]:
    return write_study(tmp_path / "inputs", simulate_phases(correlated_tasks(5, rho=0.5, seed=3, n_docs=60), seed=3))


def _argv(folders: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["analyze", "--pretrained", str(folders["pretrained"]), "--finetuned", str(folders["finetuned"]),
            "--forget", str(folders["forget"]), "--out", str(out), *FAST, *extra]


def _samples(folders: dict[str, Path], phase: str, task: str) -> Path:
    (path,) = folders[phase].glob(f"*/samples_{task}_*.jsonl")
    return path


def test_nan_loglikelihoods_are_named_in_the_report(study, tmp_path, caplog):
    path = _samples(study, "forget", "forget_p02")
    lines = path.read_text().splitlines()
    for i in range(7):  # a diverged model: NaN scores
        sample = json.loads(lines[i])
        sample["filtered_resps"] = [["nan", "False"], ["nan", "False"]]
        lines[i] = json.dumps(sample)
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        assert main(_argv(study, tmp_path / "report")) == 0
    index = (tmp_path / "report" / "index.md").read_text()
    (line,) = [x for x in index.splitlines() if "NaN or infinite loglikelihoods" in x]
    assert "WARNING" in line and "7 of 60 docs of forget_p02" in line and str(study["forget"]) in line
    assert "7 of 60 docs of forget_p02" in caplog.text
    summary = index.split("## Summary", 1)[1]
    assert summary.index("NaN or infinite") < summary.index("Behaviours on the")  # it leads the summary


def test_a_task_scored_twice_in_one_phase_folder_is_named(study, tmp_path, caplog):
    folder = next(study["forget"].iterdir())
    later = "2031-01-01T00-00-00.000001"  # a skewed clock: stamped in the future
    results = json.loads((folder / f"results_{TS}.json").read_text())
    results["configs"] = {"forget_p01": results["configs"]["forget_p01"]}
    (folder / f"results_{later}.json").write_text(json.dumps(results))
    shutil.copy(folder / f"samples_forget_p01_{TS}.jsonl", folder / f"samples_forget_p01_{later}.jsonl")
    with caplog.at_level(logging.WARNING):
        assert main(_argv(study, tmp_path / "report")) == 0
    index = (tmp_path / "report" / "index.md").read_text()
    (line,) = [x for x in index.splitlines() if "were scored twice" in x]
    assert f"samples_forget_p01_{TS}.jsonl" in line and f"samples_forget_p01_{later}.jsonl" in line
    assert "60 test docs of forget_p01" in line and "WARNING" in line
    assert "were scored twice" in caplog.text


@pytest.mark.parametrize(("flag", "value"), [("--margin", "nan"), ("--margin", "inf"),
                                             ("--margin", "-0.1"), ("--min-denominator", "nan")])
def test_non_finite_or_negative_margins_are_refused(study, tmp_path, capsys, flag, value):
    code = main(_argv(study, tmp_path / "report", flag, value))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"{flag[2:].replace('-', '_')} must be a finite number >= 0" in err and repr(float(value)) in err
    assert not (tmp_path / "report").exists()
