"""Text normalization for deduplication: case, Unicode form, whitespace and punctuation do not count."""

from __future__ import annotations

import re
import unicodedata

_PUNCT_OR_SPACE = re.compile(r"[\W_]+", re.UNICODE)


def normalize_text(text: str) -> str:
    """Lower-cased NFKC text with punctuation removed and whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return _PUNCT_OR_SPACE.sub(" ", folded).strip()


def dedup_key(prompt: str, options: list[str]) -> str:
    """What makes two docs "the same question": normalized prompt plus the set of normalized options."""
    normalized = sorted(normalize_text(o) for o in options)
    return normalize_text(prompt) + "\x1f" + "\x1e".join(normalized)
