"""Deduplication: within each split, and every evaluation doc that also occurs in the training split."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from lm_forget.data.binarize import Binarized

Item = tuple[int, Binarized]  # (row in the source split, binarized doc)


def drop_within(items: Iterable[Item], counts: Counter) -> list[Item]:
    """Keep the first of each normalized question; count the rest as ``duplicate_in_split``."""
    seen: set[str] = set()
    kept: list[Item] = []
    for item in items:
        if item[1].dedup in seen:
            counts["duplicate_in_split"] += 1
            continue
        seen.add(item[1].dedup)
        kept.append(item)
    return kept


def drop_overlap(eval_items: Iterable[Item], train_items: Iterable[Item], counts: Counter) -> list[Item]:
    """Drop evaluation docs whose normalized question occurs in the (whole) training split."""
    train_keys = {item[1].dedup for item in train_items}
    kept: list[Item] = []
    for item in eval_items:
        if item[1].dedup in train_keys:
            counts["overlaps_train"] += 1
            continue
        kept.append(item)
    return kept
