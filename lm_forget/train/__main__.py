"""``python -m lm_forget.train`` / ``accelerate launch -m lm_forget.train --config X.yaml``."""

from __future__ import annotations

import logging
import sys

from lm_forget.errors import LmForgetError
from lm_forget.train.cli import main

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        sys.exit(main(sys.argv[1:]))
    except LmForgetError as exc:
        print(f"lm-forget train: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
