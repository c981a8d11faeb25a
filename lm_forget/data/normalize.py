"""Text normalization for deduplication: case, Unicode form, whitespace and punctuation do not count."""

from __future__ import annotations

import re
import unicodedata

_PUNCT_OR_SPACE = re.compile(r"[\W_]+", re.UNICODE)


def drop_invisible(text: str) -> str:
    """``text`` without format characters (Unicode category Cf: U+200B zero-width space, U+00AD soft hyphen,
    U+2060 word joiner, U+FEFF, bidi marks): invisible, so two texts that differ only in them are the same."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def normalize_text(text: str) -> str:
    """Lower-cased NFKC text without invisible format characters, punctuation removed, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", drop_invisible(str(text))).casefold()
    return _PUNCT_OR_SPACE.sub(" ", folded).strip()


def dedup_key(prompt: str, options: list[str]) -> str:
    """What makes two docs "the same question": normalized prompt plus the set of normalized options."""
    normalized = sorted(normalize_text(o) for o in options)
    return normalize_text(prompt) + "\x1f" + "\x1e".join(normalized)
