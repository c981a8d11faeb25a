"""The notebook API (README "Python API"): the README's python blocks run as written, on the real tiny model and
real data; ``analyze`` gives the same numbers from ``simple_evaluate`` dicts as from the folders lm-eval writes;
``Study`` reads a finished study; ``import lm_forget`` stays cheap."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README_MODEL = "../shared/models/stories260K"
README_STUDY = "runs/demo"


def readme_python_blocks() -> list[str]:
    """The fenced python blocks of the README's "Python API" section, in order."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Python API\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Python API' section"
    return re.findall(r"^```python\n(.*?)^```", section.group(1), re.S | re.M)


def test_readme_has_the_two_examples():
    blocks = readme_python_blocks()
    assert len(blocks) == 2
    assert README_MODEL in blocks[0] and "lm_forget.analyze(" in blocks[0] and "lm_forget.train(" in blocks[0]
    assert README_STUDY in blocks[1] and "lm_forget.Study(" in blocks[1]


@pytest.mark.e2e
def test_readme_example_trains_evaluates_and_analyzes(tiny_model_dir, mirror_dir, tmp_path, monkeypatch, capsys):
    """The README's first block, exactly, with the tiny model's path made absolute (it runs in a temporary folder)."""
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    monkeypatch.chdir(tmp_path)
    code = readme_python_blocks()[0].replace(README_MODEL, str(tiny_model_dir))
    namespace: dict = {}
    exec(compile(code, "README.md (Python API)", "exec"), namespace)  # noqa: S102 - the documented example
    results = namespace["results"]
    assert list(results.held_out["task"]) == ["forget_cola"]
    assert results.held_out["n"].tolist() == [20]
    for phase in ("pretrained", "finetuned", "forget"):
        value, lo, hi = (results.held_out[f"acc_{phase}{s}"].iloc[0] for s in ("", "_lo", "_hi"))
        assert 0 <= lo <= value <= hi <= 1
    assert results.findings.items and "acc_finetuned" in capsys.readouterr().out
    assert (tmp_path / "out/api/report/index.md").is_file() and (tmp_path / "out/api/report/metrics.csv").is_file()
    samples = namespace["evals"]["forget"]["samples"]["forget_cola"]
    assert len(samples) == 20 and all("doc" in s and "filtered_resps" in s for s in samples)


@pytest.mark.xdist_group("demo_study")
def test_readme_study_example_reads_the_demo_study(quick_demo, tmp_path, monkeypatch, capsys):
    """The README's second block on a copy of the quick demo (finished: nothing runs), and Study's refusals."""
    import pandas as pd
    from studies import copy_study

    import lm_forget
    from lm_forget.errors import DataError

    copy_study(quick_demo.out, tmp_path / README_STUDY)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_python_blocks()[1], "README.md (Python API, study)", "exec"), namespace)  # noqa: S102
    results = namespace["results"]
    assert results.headline in results.reports and "protocol/forget_set" in results.tables
    analyze_out = next((tmp_path / README_STUDY / "analyze").glob("*/output"))
    report = pd.read_csv(analyze_out / results.headline / "metrics.csv")
    pd.testing.assert_frame_equal(results.metrics.drop(columns="ratio_note"), report.drop(columns="ratio_note"))
    assert results.findings.scope == "study"
    assert results.to_markdown() == (analyze_out / "index.md").read_text(encoding="utf-8")
    copied = results.write(tmp_path / "copy")
    assert lm_forget.StudyResults.read(copied).metrics.equals(results.metrics)
    assert results.headline in capsys.readouterr().out

    fresh = lm_forget.Study(tmp_path / README_STUDY / "run.yaml", run_dir=tmp_path / "fresh")
    assert fresh.run_dir == (tmp_path / "fresh").resolve()
    assert {row["status"] for row in fresh.status().rows} == {"will run"}
    with pytest.raises(DataError, match="has not finished"):
        fresh.results()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no analysis report"):
        lm_forget.StudyResults.read(tmp_path / "empty")


@pytest.fixture(scope="module")
def evaluated(tiny_model_dir, mirror_dir, tmp_path_factory):
    """Real evaluations of stories260K and three random adapters (fine-tuned, two forget seeds) on two tasks: each
    as the dict ``lm_forget.evaluate`` returns and as the folder it saved (``output_path``)."""
    from studies import random_adapter

    import lm_forget

    root = tmp_path_factory.mktemp("api_evals")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
        adapters = {"pretrained": None, "finetuned": random_adapter(tiny_model_dir, root / "a_ft", 1),
                    "forgotten1": random_adapter(tiny_model_dir, root / "a_fg1", 2),
                    "forgotten2": random_adapter(tiny_model_dir, root / "a_fg2", 3)}
        dicts = {name: lm_forget.evaluate(tiny_model_dir, ["forget_cola", "forget_openbookqa"], adapter=adapter,
                                          limit=20, batch_size=8, output_path=root / name)
                 for name, adapter in adapters.items()}
    return dicts, {name: root / name for name in dicts}, root


@pytest.mark.e2e
def test_analyze_gives_the_same_numbers_from_dicts_and_from_folders(evaluated, tmp_path):
    import pandas as pd

    import lm_forget

    dicts, folders, _ = evaluated
    options = {"n_bootstrap": 200, "n_permutations": 200, "n_power": 100}
    for forgotten in (["forgotten1"], ["forgotten1", "forgotten2"]):  # one forget seed, then two pooled
        def pick(src: dict, names: list[str] = forgotten):
            return src[names[0]] if len(names) == 1 else [src[n] for n in names]

        from_dicts = lm_forget.analyze(pretrained=dicts["pretrained"], finetuned=dicts["finetuned"],
                                       forget=pick(dicts), options=options)
        from_folders = lm_forget.analyze(pretrained=folders["pretrained"], finetuned=str(folders["finetuned"]),
                                         forget=pick(folders), options=options)
        seeds = from_dicts.metrics.pop("seed") if "seed" in from_dicts.metrics else None
        if seeds is not None:  # replicate labels: the dicts' names vs the folders' names
            assert seeds.nunique() == 2 and from_folders.metrics.pop("seed").nunique() == 2
        pd.testing.assert_frame_equal(from_dicts.metrics, from_folders.metrics)
        drop = ["role"] if len(forgotten) > 1 else []  # pooled: per-seed sensitivity rows name the seed
        pd.testing.assert_frame_equal(from_dicts.tests.drop(columns=drop), from_folders.tests.drop(columns=drop))
        pd.testing.assert_frame_equal(from_dicts.example_tests, from_folders.example_tests)
        assert from_dicts.findings.to_dict() == from_folders.findings.to_dict()
    # the dicts are lm-eval's own: scores, configs and per-doc samples, untouched by saving them
    assert dicts["pretrained"]["results"]["forget_cola"]["acc,none"] >= 0
    assert isinstance(dicts["pretrained"]["samples"]["forget_cola"][0]["filtered_resps"][0][0], float)


@pytest.mark.e2e
def test_study_results_written_and_read_back_match(evaluated, tmp_path):
    import pandas as pd

    import lm_forget

    dicts, _, _ = evaluated
    results = lm_forget.analyze(pretrained=dicts["pretrained"], finetuned=dicts["finetuned"],
                                forget=dicts["forgotten1"], options={"n_bootstrap": 200, "n_permutations": 200})
    markdown = results.to_markdown()
    assert markdown.startswith("# Forgetting analysis") and "## Findings" in markdown
    out = results.write(tmp_path / "report")
    back = lm_forget.StudyResults.read(out)
    numbers = results.metrics.select_dtypes("number").columns
    pd.testing.assert_frame_equal(results.metrics[numbers], back.metrics[numbers], check_exact=False, rtol=1e-12)
    assert back.findings.to_dict() == results.findings.to_dict()
    assert back.options == results.options
    assert (out / "index.md").read_text(encoding="utf-8") == markdown


def test_a_dict_without_samples_is_refused():
    import lm_forget
    from lm_forget.errors import DataError

    with pytest.raises(DataError, match="log_samples=True"):
        lm_forget.analyze(pretrained={"results": {}}, finetuned={"results": {}}, forget={"results": {}})


def test_import_stays_cheap_and_train_is_callable():
    code = ("import sys, lm_forget; heavy = [m for m in ('pandas', 'torch', 'lm_eval', 'transformers') "
            "if m in sys.modules]; assert not heavy, heavy; "
            "import lm_forget.train.numbers; assert callable(lm_forget.train), lm_forget.train; "
            "assert not [m for m in ('pandas', 'torch') if m in sys.modules]; "
            "assert set(lm_forget.__all__) >= {'evaluate', 'train', 'analyze', 'Study', 'StudyResults'}")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
