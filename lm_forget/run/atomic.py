"""Old home of the atomic writes, now in :mod:`lm_forget.io`; kept only for run/analysis.py's import.

Delete once run/analysis.py imports ``lm_forget.io`` (another change is moving that module).
"""

from lm_forget.io import atomic_dir

__all__ = ["atomic_dir"]
