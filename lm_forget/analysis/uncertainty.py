"""Paired bootstrap over docs: one resample of doc indices shared by every phase of a task.

The same docs are scored in every phase (pretrained, fine-tuned, forget, control), so the uncertainty of a
difference (forget drop, forget ratio) must resample *docs*, keeping each doc's outcomes in all phases
together. ``scipy.stats.bootstrap`` does paired resampling of several samples, but needs one statistic
per call and re-draws per statistic; here one (B, n) index matrix from a ``numpy`` Generator seeded by a
stable hash of (seed, task, split) yields every phase's accuracy per resample at once, and every derived
quantity (gap, drop, ratio, behaviour) is a vectorised function of those B accuracy vectors.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np


def stable_rng(*parts: object) -> np.random.Generator:
    """A Generator seeded from a SHA-256 of ``parts`` (never ``hash()`` or global state)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def resample_indices(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) doc indices drawn with replacement."""
    return rng.integers(0, n, size=(n_resamples, n)) if n else np.zeros((n_resamples, 0), dtype=np.int64)


def resampled_means(values: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    """Mean of each phase's per-doc values under the shared resample ``idx`` (paired)."""
    return {name: np.asarray(v, dtype=float)[idx].mean(axis=1) for name, v in values.items()}


def percentile_ci(draws: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of the finite draws (NaN when fewer than half are finite)."""
    draws = np.asarray(draws, dtype=float)
    ok = draws[np.isfinite(draws)]
    if len(ok) < max(1, len(draws) // 2):
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(ok, [tail, 100 - tail])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval."""

    value: float
    low: float
    high: float

    @classmethod
    def of(cls, value: float, draws: np.ndarray, level: float) -> Interval:
        lo, hi = percentile_ci(draws, level)
        return cls(float(value), lo, hi)

