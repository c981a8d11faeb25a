"""An output location that is, contains or lies inside an input is refused; so is a folder of other things.

Each case asserts the one-line message, exit code 2, and that every input file is byte-for-byte unchanged
(nothing written, nothing lost). The fine-tuned adapter is a real one (stories260K, real CoLA docs).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from lm_forget.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_CFG = str(REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) -> its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def assert_refused(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture(scope="module")
def env(tmp_path_factory, mirror_dir, tiny_model_dir):
    """A copy of the real tiny model and a real fine-tuned adapter trained from it (two steps)."""
    root = tmp_path_factory.mktemp("destructive")
    model = root / "model"
    shutil.copytree(tiny_model_dir, model)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
        ft = root / "ft"
        code = main(["train", "--config", TRAIN_CFG, "--model", str(model), "--tasks", "forget_cola",
                     "--num_examples", "8", "--max_steps", "1", "--output_dir", str(ft), "--disable_tqdm", "true"])
        assert code == 0
        yield {"root": root, "model": model, "ft": ft}


def _forget(env, *flags: str) -> list[str]:
    return ["train", "--config", TRAIN_CFG, "--model", str(env["model"]), "--tasks", "forget_cola",
            "--stage", "forget", "--num_examples", "8", "--max_steps", "1", "--disable_tqdm", "true", *flags]


def test_train_refuses_its_init_adapter_as_output(env, capsys, monkeypatch, mirror_dir):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    before = snapshot(env["ft"])
    code, err = run(_forget(env, "--init_adapter", str(env["ft"]), "--output_dir", str(env["ft"]), "--overwrite"),
                    capsys)
    assert_refused(code, err, f"--output_dir {env['ft']} is the input --init_adapter", "nothing was written")
    assert snapshot(env["ft"]) == before
    assert not list(env["root"].glob(".ft.previous*"))  # not even moved aside


def test_train_refuses_output_in_or_around_the_base_model(env, capsys, monkeypatch, mirror_dir):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    before = snapshot(env["model"])
    for out, how in ((env["model"], "is"), (env["model"] / "adapter", "lies inside"), (env["root"], "contains")):
        code, err = run(_forget(env, "--init_adapter", str(env["ft"]), "--output_dir", str(out)), capsys)
        assert_refused(code, err, f"{how} the input --model")
    assert snapshot(env["model"]) == before
    assert not (env["model"] / "adapter").exists()


def test_train_refuses_output_inside_the_data_mirror(env, capsys, monkeypatch, tmp_path, mirror_dir):
    data = tmp_path / "hf"
    shutil.copytree(mirror_dir / "nyu-mll", data / "nyu-mll")
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(data))
    before = snapshot(data)
    code, err = run(_forget(env, "--output_dir", str(data / "nyu-mll" / "out")), capsys)
    assert_refused(code, err, "lies inside the input the data mirror (LM_FORGET_DATA_DIR)")
    assert snapshot(data) == before


def test_train_refuses_a_folder_of_other_things(env, capsys, monkeypatch, tmp_path, mirror_dir):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("months of work\n")
    before = snapshot(other)
    code, err = run(_forget(env, "--init_adapter", str(env["ft"]), "--output_dir", str(other), "--overwrite"),
                    capsys)
    assert_refused(code, err, "is not an lm-forget training run (no forget_config.json; it holds thesis.tex)")
    assert snapshot(other) == before


def test_train_refuses_its_own_config_file_inside_the_output(env, capsys, monkeypatch, tmp_path, mirror_dir):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    cfg = tmp_path / "train.yaml"
    shutil.copy(TRAIN_CFG, cfg)
    before = snapshot(tmp_path)
    argv = _forget(env, "--output_dir", str(tmp_path))
    argv[argv.index("--config") + 1] = str(cfg)
    code, err = run(argv, capsys)
    assert_refused(code, err, "contains the input --config")
    assert snapshot(tmp_path) == before


STUDY = """\
# my study -- these comments are the only record of why
run_dir: {run_dir}
model: {{name_or_path: {model}}}
tasks: {{finetune: [forget_cola], forget: [forget_cola], eval: [forget_cola]}}
stages: [eval_pretrained]
"""


def test_run_refuses_to_replace_its_own_config_file(env, capsys, monkeypatch, tmp_path, mirror_dir):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(STUDY.format(run_dir=".", model=env["model"]))
    before = snapshot(tmp_path)
    for dry in ([], ["--dry-run"]):
        code, err = run(["run", str(cfg), *dry], capsys)
        assert_refused(code, err, "is the run dir's own config.yaml", "nothing was written")
    assert snapshot(tmp_path) == before


def test_run_refuses_a_run_dir_of_other_things_or_a_file(env, capsys, monkeypatch, tmp_path, mirror_dir):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    cfg = tmp_path / "study.yaml"
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "photo.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "afile").write_text("x")
    cfg.write_text(STUDY.format(run_dir=tmp_path / "home", model=env["model"]))
    before = snapshot(tmp_path)
    code, err = run(["run", str(cfg), "--dry-run"], capsys)
    assert_refused(code, err, "run_dir", "is not an lm-forget study (no plan.json; it holds photo.jpg)")
    code, err = run(["run", str(cfg), "--run-dir", str(tmp_path / "afile")], capsys)
    assert_refused(code, err, "is a file, not a folder")
    code, err = run(["run", str(cfg), "--run-dir", str(env["model"] / "runs")], capsys)
    assert_refused(code, err, "lies inside the input model.name_or_path")
    assert snapshot(tmp_path) == before


def test_analyze_shares_the_check(tmp_path, capsys):
    """analyze's own refusal (a report replaces its whole folder) is the same check, hidden files counted."""
    out = tmp_path / "report"
    out.mkdir()
    (out / ".keep").write_text("")
    from lm_forget.analysis.writer import check_out
    from lm_forget.errors import ConfigError

    with pytest.raises(ConfigError, match=r"is not an lm-forget report folder \(no index.md; it holds .keep\)"):
        check_out(out)


def test_run_resumes_from_its_own_resolved_config(env, capsys, monkeypatch, tmp_path, mirror_dir):
    """The run dir's own config.yaml, as the runner dumps it (no comments), may be run again: nothing is lost."""
    import yaml

    from lm_forget.run.config import load_run_config

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    src = tmp_path / "study.yaml"
    src.write_text(STUDY.format(run_dir=tmp_path / "run", model=env["model"]))
    dump = tmp_path / "run" / "config.yaml"
    dump.parent.mkdir()
    dump.write_text(yaml.safe_dump(load_run_config(src).to_dict(), sort_keys=False))
    assert main(["run", str(dump), "--dry-run"]) == 0, capsys.readouterr().err
    assert "1 will run" in capsys.readouterr().out


def test_the_demo_layout_is_allowed(tmp_path, capsys, mirror_dir, monkeypatch):
    """`lm-forget demo` keeps its model, task YAMLs and run.yaml inside its run dir, where the runner never
    writes (its own config.yaml, plan.json and stage folders): that is not an input the run could destroy."""
    import yaml

    from lm_forget.demo.study import demo_settings, prepare, run_config

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    out = tmp_path / "demo"
    settings = demo_settings(quick=True, seed=0, threads=1, methods=[])
    paths = prepare(out, settings)
    cfg = out / "run.yaml"
    cfg.write_text(yaml.safe_dump(run_config(out, settings, paths), sort_keys=False))
    assert main(["run", str(cfg), "--dry-run"]) == 0, capsys.readouterr().err
    assert "19 will run" in capsys.readouterr().out  # 15 steps + the relearn control (2 trainings, 2 evals)
    bad = yaml.safe_load(cfg.read_text())
    bad["model"]["name_or_path"] = str(out / "finetune")  # an input where the runner writes: refused
    shutil.copytree(paths["model"], out / "finetune")
    cfg.write_text(yaml.safe_dump(bad, sort_keys=False))
    code, err = run(["run", str(cfg), "--dry-run"], capsys)
    assert_refused(code, err, f"run_dir {out} contains the input model.name_or_path")
