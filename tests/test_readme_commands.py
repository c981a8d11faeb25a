"""Every ``lm-forget`` command shown in README.md and docs/*.md runs: through ``lm_forget.cli.main`` in-process.

Commands are read from the fenced ``bash`` blocks (continuation lines joined, ``# comments`` dropped,
optional ``[--flag VALUE]`` groups kept, ``[A | B ...]`` alternatives dropped). Each one is then run as far
as a test can afford: ``tasks list`` and ``tasks show`` for real, ``run`` with ``--dry-run`` (into a temporary
run dir), ``train`` through its real parser into a checked ``ForgetConfig``, every other command through its
own parser (flags and values checked), and every command's ``--help``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from lm_forget.cli import COMMANDS, main
from lm_forget.data.registry import SUITE

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^[ \t]*```bash\n(.*?)^[ \t]*```", re.S | re.M)


def _groups(tokens: list[str]) -> list[str]:
    """Keep simple optional groups (``[--quick]``, ``[--out DIR]``); drop alternatives and repeats."""
    out: list[str] = []
    group: list[str] | None = None
    for token in tokens:
        if group is None and token.startswith("["):
            group = []
        if group is None:
            out.append(token)
            continue
        group.append(token)
        if token.endswith("]") and sum(t.count("[") for t in group) == sum(t.count("]") for t in group):
            inner = " ".join(group)[1:-1]
            if not any(mark in inner for mark in ("|", "...", "[")):
                out += inner.split()
            group = None
    return out


def documented_commands() -> list[tuple[str, list[str]]]:
    """``(where, argv after lm-forget)`` for every ``lm-forget`` (or ``-m lm_forget.train``) command in the docs."""
    found: list[tuple[str, list[str]]] = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in _FENCE.finditer(text):
            joined = re.sub(r"\\\n\s*", " ", block.group(1))
            for line in joined.splitlines():
                line = line.strip().replace("${SLURM_ARRAY_TASK_ID}", "1").replace(" SECONDS", " 60")
                tokens = shlex.split(line, comments=True) if line else []
                if tokens[:1] == ["lm-forget"]:
                    argv = tokens[1:]
                elif "lm_forget.train" in tokens and tokens[:1] == ["accelerate"]:
                    argv = ["train", *tokens[tokens.index("lm_forget.train") + 1:]]
                else:
                    continue
                found.append((f"{doc.name}: {line[:70]}", _groups(argv)))
    return found


COMMANDS_IN_DOCS = documented_commands()


def test_the_docs_show_commands_of_every_kind():
    kinds = {argv[0] for _, argv in COMMANDS_IN_DOCS}
    assert len(COMMANDS_IN_DOCS) >= 30
    assert set(COMMANDS) - {"eval"} <= kinds <= set(COMMANDS), kinds ^ set(COMMANDS)  # docs show lm_eval itself


def _parse_only(argv: list[str]) -> None:
    """The command's own parser accepts the documented flags and values (nothing is run)."""
    name, rest = argv[0], argv[1:]
    if name == "train":
        from lm_forget.train.cli import parse_config

        parse_config(rest)  # TrlParser + ForgetConfig: flags, values, the --config YAML
    elif name == "tasks":
        from lm_forget.data.cli import _parser

        _parser().parse_args(rest)
    elif name in ("features", "analyze"):
        from lm_forget.analysis import cli

        getattr(cli, f"{name}_parser")().parse_args(rest)
    elif name in ("push", "demo"):
        import importlib

        importlib.import_module(COMMANDS[name][0].split(":")[0]).build_parser().parse_args(rest)
    elif name != "eval":  # `eval` is lm-eval's own CLI: its --help below is the check
        raise AssertionError(f"no parse-only check for {name}")


@pytest.mark.parametrize(("where", "argv"), COMMANDS_IN_DOCS, ids=[w for w, _ in COMMANDS_IN_DOCS])
def test_documented_command_runs(where, argv, tmp_path, monkeypatch, capsys, suite_mirror):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    monkeypatch.chdir(REPO_ROOT)  # the docs' paths (configs/...) are relative to the checkout
    name = argv[0]
    if name == "run":
        code = main([*argv, *([] if "--dry-run" in argv else ["--dry-run"]), "--run-dir", str(tmp_path / "run")])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "steps in" in out.out
        assert not (tmp_path / "run").exists()  # a dry run writes nothing
    elif argv[:2] in (["tasks", "list"], ["tasks", "show"]):
        code = main(argv)
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "forget_" in out.out
    else:
        _parse_only(argv)
    with pytest.raises(SystemExit) as exit_:
        main([name, *argv[1:2], "--help"] if name == "tasks" else [name, "--help"])
    assert exit_.value.code == 0
    assert "usage" in capsys.readouterr().out.lower()


def test_tasks_list_takes_task_dirs(tmp_path, capsys):
    """`tasks list` (it crashed with AttributeError: task_dirs) lists derived tasks of --task-dir folders."""
    assert main(["tasks", "list", "--task-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("\nforget_") == len(SUITE) and f"{len(SUITE)} suite tasks" in out
