"""Stable hashes: every random-looking choice in lm-forget derives from these, never from ``hash()``."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_digest(*parts: object) -> str:
    """Hex SHA-256 of the parts, joined unambiguously (identical on every machine and process)."""
    payload = json.dumps([str(p) for p in parts], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def stable_int(*parts: object) -> int:
    """A 64-bit non-negative integer from the parts."""
    return int(stable_digest(*parts)[:16], 16)


def stable_unit(*parts: object) -> float:
    """A float in [0, 1) from the parts."""
    return stable_int(*parts) / float(1 << 64)


def canonical_json(obj: Any) -> str:
    """Canonical JSON text (sorted keys, no whitespace, UTF-8): equal objects give equal bytes."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_fallback)


def _fallback(obj: Any) -> Any:
    # numpy scalars and other non-JSON values from dataset rows
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    return str(obj)


def content_key(obj: Any) -> str:
    """Content hash of a source row: its identity for ids and hashing, independent of row order."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()
