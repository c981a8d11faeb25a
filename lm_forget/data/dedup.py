"""Deduplication: within each split, and every evaluation doc that also occurs in the training split."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from lm_forget.data.binarize import Binarized


def drop_within(items: Iterable[Binarized], counts: Counter) -> list[Binarized]:
    """Keep the first of each normalized question; count the rest as ``duplicate_in_split``."""
    seen: set[str] = set()
    kept: list[Binarized] = []
    for item in items:
        if item.dedup in seen:
            counts["duplicate_in_split"] += 1
            continue
        seen.add(item.dedup)
        kept.append(item)
    return kept


def drop_overlap(eval_items: Iterable[Binarized], train_items: Iterable[Binarized], counts: Counter) -> list[Binarized]:
    """Drop evaluation docs whose normalized question occurs in the (whole) training split."""
    train_keys = {item.dedup for item in train_items}
    kept: list[Binarized] = []
    for item in eval_items:
        if item.dedup in train_keys:
            counts["overlaps_train"] += 1
            continue
        kept.append(item)
    return kept
