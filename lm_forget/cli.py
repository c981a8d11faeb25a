"""The ``lm-forget`` command: a thin dispatcher; every subcommand lives in the module that owns it.

Each subcommand is ``module:function`` taking ``argv: list[str]`` and returning an exit code, imported
only when called so ``lm-forget --help`` stays instant.
"""

from __future__ import annotations

import importlib
import logging
import sys

from lm_forget import __version__
from lm_forget.errors import DEBUG_ENV, run_command

# name -> (module:function, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "tasks": ("lm_forget.data.cli:main", "list, show, build or derive forget_* tasks"),
    "eval": ("lm_forget.harness:eval_main", "run lm-eval's CLI with the forget suite included"),
    "train": ("lm_forget.train.cli:main", "fine-tune, then forget with random/flipped labels (TRL + LoRA)"),
    "push": ("lm_forget.hub.cli:main", "push a trained adapter folder to the Hugging Face Hub"),
    "features": ("lm_forget.analysis.cli:features_main", "extract hidden-state variance features"),
    "analyze": ("lm_forget.analysis.cli:analyze_main", "forgetting metrics, statistics, figures, report"),
    "run": ("lm_forget.run.cli:main", "run a whole forgetting study from one config, resumably"),
    "demo": ("lm_forget.demo.cli:main", "offline CPU demo of the full study on an embedded suite"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        f"lm-forget {__version__} - study how language models forget",
        "",
        "usage: lm-forget [--debug] <command> [options]   (lm-forget <command> --help for details)",
        f"       --debug (or {DEBUG_ENV}=1): show full tracebacks instead of one-line errors",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def _resolve(target: str):
    module_name, _, func_name = target.partition(":")
    return getattr(importlib.import_module(module_name), func_name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lm-forget`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        print(f"lm-forget {__version__}")
        return 0
    if argv[0] == "--debug":
        import os

        os.environ[DEBUG_ENV] = "1"
        return main(argv[1:])
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, COMMANDS, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        print(f"lm-forget: unknown command {name!r}.{hint} Run `lm-forget --help` for the list.", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command(f"lm-forget {name}", _resolve(COMMANDS[name][0]), rest if name in WRAPPED else dash_flags(rest))


#: subcommands spelled as the library they wrap spells its flags: ``train`` (TRL / transformers' HfArgumentParser,
#: which accepts ``--learning_rate`` and ``--learning-rate`` alike) and ``eval`` (lm-eval's own CLI, underscores)
WRAPPED = frozenset({"train", "eval"})


def dash_flags(argv: list[str]) -> list[str]:
    """Every other subcommand declares dashed flags and accepts the underscore spelling too:
    ``--min_denominator 5`` is ``--min-denominator 5`` (option names only, up to a bare ``--``)."""
    out: list[str] = []
    for i, token in enumerate(argv):
        if token == "--":
            return out + argv[i:]
        if token.startswith("--") and "_" in token.partition("=")[0]:
            flag, eq, value = token.partition("=")
            token = flag.replace("_", "-") + eq + value
        out.append(token)
    return out


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
