"""``python -m lm_forget`` is the same as the ``lm-forget`` command."""

import sys

from lm_forget.cli import main

sys.exit(main())
