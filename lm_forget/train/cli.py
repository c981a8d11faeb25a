"""``lm-forget train`` and ``python -m lm_forget.train``: a thin TrlParser script around ``api.train``.

``--config file.yaml`` sets defaults, CLI flags override them (TRL's convention), every
``SFTConfig``/``TrainingArguments`` flag works, and ``accelerate launch -m lm_forget.train`` runs the same
script on several GPUs or with DeepSpeed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lm_forget.errors import ConfigError, did_you_mean


def make_parser():
    """TrlParser over ForgetConfig, plus the ``--no-lora`` spelling of ``--use_lora false``."""
    from trl import TrlParser

    from lm_forget.train.config import ForgetConfig

    parser = TrlParser((ForgetConfig,), prog="lm-forget train")
    parser.add_argument("--no-lora", "--no_lora", dest="use_lora", action="store_false",
                        help="full fine-tuning instead of a LoRA adapter")
    return parser


def parse_config(argv: list[str]):
    """A ForgetConfig from ``argv`` (``--config`` YAML + flags); unknown keys get a did-you-mean."""
    argv = list(argv)
    parser = make_parser()
    if "--config" in argv:
        index = argv.index("--config")
        if index + 1 >= len(argv) or not Path(argv[index + 1]).is_file():
            missing = argv[index + 1] if index + 1 < len(argv) else "(none)"
            raise ConfigError(f"--config {missing}: no such file; see configs/ for examples")
        _check_yaml_keys(Path(argv[index + 1]), parser)
    _check_flags(argv, parser)
    _check_push_flag(argv)
    try:
        (config,) = parser.parse_args_and_config(argv)
    except ValueError as exc:  # unknown flags, bad values
        flags = re.findall(r"'--([A-Za-z0-9_.-]+)'", str(exc)) if "not used" in str(exc) else []
        if flags:
            raise ConfigError(" ".join(_unknown(f"flag --{f}", f, parser) for f in flags)
                              + " `lm-forget train --help` lists them.") from None
        raise ConfigError(f"invalid training config: {exc}") from exc
    if "--config" in argv and config.output_dir:
        from lm_forget.outdirs import refuse_overlap

        refuse_overlap(str(config.output_dir), {"--config": argv[argv.index("--config") + 1]}, flag="--output_dir")
    return config


def _known(parser) -> list[str]:
    return sorted({action.dest for action in parser._actions if action.dest != "help"} | {"env"})


def _unknown(what: str, key: str, parser) -> str:
    name = key.replace("-", "_")
    return f"unknown {what}.{did_you_mean(name, _known(parser))}"


def _check_push_flag(argv: list[str]) -> None:
    """``--push_to_hub REPO`` is refused: TrainingArguments' ``--push_to_hub`` is a switch; the repo is its own flag."""
    for i, arg in enumerate(argv[:-1]):
        if arg in ("--push_to_hub", "--push-to-hub") and "/" in argv[i + 1]:
            raise ConfigError(f"--push_to_hub is TrainingArguments' switch; name the repo separately: "
                              f"--push_to_hub --hub_model_id {argv[i + 1]}")


def _check_flags(argv: list[str], parser) -> None:
    """Unknown ``--flags`` with a did-you-mean (HfArgumentParser reports them only after building the config)."""
    options = {option for action in parser._actions for option in action.option_strings} | {"--config"}
    bad = [arg.split("=", 1)[0] for arg in argv if arg.startswith("--") and arg.split("=", 1)[0] not in options]
    if bad:
        raise ConfigError(" ".join(_unknown(f"flag {flag}", flag[2:], parser) for flag in bad)
                          + " `lm-forget train --help` lists them.")


def _check_yaml_keys(path: Path, parser) -> None:
    """Every key of the training YAML must be a ForgetConfig/SFTConfig field (TRL would reject it later)."""
    import yaml

    from lm_forget.limits import load_yaml

    try:
        data = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f":{where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc}); "
                          "see configs/train/train_tiny_cpu.yaml for the format") from None
    if data is None:
        return
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings (key: value), got a {type(data).__name__}")
    known = set(_known(parser))
    bad = [str(key) for key in data if str(key) not in known]
    if bad:
        raise ConfigError(f"{path}: " + " ".join(_unknown(f"key {key!r}", key, parser) for key in bad)
                          + " Keys are ForgetConfig / SFTConfig fields (`lm-forget train --help`).")


def main(argv: list[str]) -> int:
    """Entry point of ``lm-forget train``."""
    from lm_forget.train.api import train

    config = parse_config(argv)
    result = train(config)
    if os.environ.get("RANK", "0") == "0":  # under accelerate/torchrun, only the main process reports
        print(f"{config.stage}: {result.global_step} steps on {result.num_examples} examples -> {result.output_dir}")
        loss = result.metrics.get("train_loss", float("nan"))
        print(f"labels hash {result.labels_hash[:16]}…; train loss {loss:.4f}")
        if result.hub_url:
            print(f"pushed to {result.hub_url}")
    return 0
