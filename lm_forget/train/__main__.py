"""``python -m lm_forget.train`` / ``accelerate launch -m lm_forget.train --config X.yaml``."""

from __future__ import annotations

import logging
import sys

from lm_forget.errors import run_command
from lm_forget.train.cli import main

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(run_command("lm-forget train", main, sys.argv[1:]))
