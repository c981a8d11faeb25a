"""One flag style per subcommand, the other spelling accepted: the wrapping subcommands (``train``: TRL's
HfArgumentParser; ``eval``: lm-eval's CLI) spell flags as their library does; every other subcommand declares
dashed flags and accepts the underscore spelling of each (docs/architecture.md, "Flags")."""

from __future__ import annotations

import re

import pytest

from lm_forget.cli import COMMANDS, WRAPPED, dash_flags, main

OWN = sorted(set(COMMANDS) - WRAPPED)


def _flags(command: str, capsys) -> set[str]:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", capsys.readouterr().out))


@pytest.mark.parametrize("command", OWN)
def test_own_subcommands_declare_dashed_flags_only(command, capsys):
    flags = _flags(command, capsys)
    assert flags, command
    # lm-eval's own flags may be quoted in help texts (analyze reads `lm_eval --output_path ... --log_samples`)
    quoted = {"--output_path", "--log_samples", "--include_path", "--model_args", "--tasks"}
    assert not {f for f in flags if "_" in f} - quoted, command


def test_underscores_become_dashes_in_option_names_only():
    argv = ["x_y.yaml", "--dry_run", "--run_dir=/tmp/a_b", "--set", "forget.learning_rate=1e-4", "--", "--keep_me"]
    assert dash_flags(argv) == ["x_y.yaml", "--dry-run", "--run-dir=/tmp/a_b", "--set", "forget.learning_rate=1e-4",
                                "--", "--keep_me"]


def test_both_spellings_reach_the_same_command(tmp_path, tiny_model_dir, mirror_dir, monkeypatch, capsys):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    study = tmp_path / "study.yaml"
    study.write_text(f"model: {{name_or_path: {tiny_model_dir}}}\ntasks: {{eval: [forget_cola]}}\n"
                     "stages: [eval_pretrained]\n")
    outputs = []
    for dry, run_dir in (("--dry-run", "--run-dir"), ("--dry_run", "--run_dir")):
        assert main(["run", str(study), dry, run_dir, str(tmp_path / "run")]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and "1 will run" in outputs[0]
    assert not (tmp_path / "run").exists()  # a dry run writes nothing
