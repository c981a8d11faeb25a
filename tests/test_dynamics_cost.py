"""What the dynamics callback scores: a fixed, hash-sampled subset of the forget pool per task
(``dynamics_limit``), nested across pool sizes so fine-tune and forget snapshots join per doc; the setting
reaches step keys only when dynamics are on."""

from __future__ import annotations

import pytest

from lm_forget.run.schema import DYNAMICS_LIMIT
from lm_forget.train.dynamics import sample_pool


def _pool(tasks=("forget_cola", "forget_sst2"), n=50):
    return [{"task": t, "id": f"{t}-{i:03d}"} for t in tasks for i in range(n)]


def test_limit_keeps_that_many_docs_per_task_in_pool_order():
    pool = _pool()
    kept = sample_pool(pool, 10)
    assert [sum(d["task"] == t for d in kept) for t in ("forget_cola", "forget_sst2")] == [10, 10]
    positions = [pool.index(d) for d in kept]
    assert positions == sorted(positions)
    assert sample_pool(pool, 10) == kept  # stable: the same docs every call (and every snapshot)
    assert sample_pool(pool, None) == pool and sample_pool(pool, 1000) == pool


def test_subsets_nest_so_finetune_and_forget_snapshots_join():
    pool = _pool(n=200)
    finetune = {d["id"] for d in sample_pool(pool, 40)}  # the fine-tune run scores the largest pool
    for n in (30, 60, 120):  # forget cells train on the first n docs of each task's pool
        cell = [d for d in pool if d["task"] == "forget_cola" and int(d["id"][-3:]) < n]
        cell_kept = {d["id"] for d in sample_pool(cell, 40)}
        in_both = finetune & {d["id"] for d in cell}
        assert in_both <= cell_kept  # every fine-tune-scored doc of the cell is scored by the cell too
        assert len(cell_kept) == min(n, 40)


def test_not_a_prefix_sample():
    kept = sample_pool(_pool(tasks=("t",), n=200), 20)
    assert max(int(d["id"][-3:]) for d in kept) > 100  # spread over the pool, not its first docs


def test_limit_reaches_step_keys_only_with_dynamics_on():
    from lm_forget.run.keys import train_settings
    from lm_forget.run.schema import ForgetSettings

    off = train_settings(ForgetSettings(dynamics_limit=50))
    assert "dynamics_limit" not in off and "dynamics_every" not in off
    on = train_settings(ForgetSettings(dynamics_every=0.25))
    assert on["dynamics_limit"] == DYNAMICS_LIMIT == 200
    assert train_settings(ForgetSettings(dynamics_every=0.25, dynamics_limit=None))["dynamics_limit"] is None


def test_limit_must_be_positive():
    from pydantic import ValidationError

    from lm_forget.run.schema import ForgetSettings

    with pytest.raises(ValidationError, match="dynamics_limit"):
        ForgetSettings(dynamics_every=0.25, dynamics_limit=0)
