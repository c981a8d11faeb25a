"""``--shard i/n``: split the cells of a study deterministically across machines (job arrays)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from lm_forget.errors import ConfigError

T = TypeVar("T")  # a Cell, or a cell id
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"3/8"`` -> ``(3, 8)`` (1-based, as SLURM's ``$SLURM_ARRAY_TASK_ID`` with ``--array=1-8``)."""
    if text is None:
        return None
    match = _SHARD.match(text)
    if not match:
        raise ConfigError(f"--shard {text}: write it as i/n, e.g. --shard 3/8 (shard 3 of 8, counting from 1).")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ConfigError(f"--shard {text}: impossible shard; i must be between 1 and n (got {index} of {count}).")
    return index, count


def shard_cells(cells: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """The cells of one shard: sorted by id, then dealt round-robin so shards differ in size by at most one.

    Sorting makes the split independent of config order and of the machine; dealing round-robin
    (not hashing) keeps the shards balanced even for a handful of cells.
    """
    ordered = sorted(set(cells), key=str)  # a Cell's str is its id
    if shard is None:
        return ordered
    index, count = shard
    return ordered[index - 1 :: count]
