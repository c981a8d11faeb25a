"""``lm-forget train`` and ``python -m lm_forget.train``: a thin TrlParser script around ``api.train``.

``--config file.yaml`` sets defaults, CLI flags override them (TRL's convention), every
``SFTConfig``/``TrainingArguments`` flag works, and ``accelerate launch -m lm_forget.train`` runs the same
script on several GPUs or with DeepSpeed.
"""

from __future__ import annotations

import os
from pathlib import Path

from lm_forget.errors import ConfigError


def make_parser():
    """TrlParser over ForgetConfig, plus the ``--no-lora`` spelling of ``--use_lora false``."""
    from trl import TrlParser

    from lm_forget.train.config import ForgetConfig

    parser = TrlParser((ForgetConfig,), prog="lm-forget train")
    parser.add_argument("--no-lora", "--no_lora", dest="use_lora", action="store_false",
                        help="full fine-tuning instead of a LoRA adapter")
    return parser


def parse_config(argv: list[str]):
    """A ForgetConfig from ``argv`` (``--config`` YAML + flags)."""
    argv = list(argv)
    if "--config" in argv:
        index = argv.index("--config")
        if index + 1 >= len(argv) or not Path(argv[index + 1]).is_file():
            missing = argv[index + 1] if index + 1 < len(argv) else "(none)"
            raise ConfigError(f"--config {missing}: no such file; see configs/ for examples")
    try:
        (config,) = make_parser().parse_args_and_config(argv)
    except ValueError as exc:  # unknown YAML keys, bad values
        raise ConfigError(f"invalid training config: {exc}") from exc
    return config


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
