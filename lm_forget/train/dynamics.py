"""Training dynamics: score the forget pool during training, per doc, as lm-eval scores it.

A ``transformers.TrainerCallback`` that, every ``every`` optimizer steps (an int) or every fraction of an
epoch (a float < 1), wraps the model being trained in lm-eval's ``HFLM`` and calls its ``loglikelihood``
on both choices of each doc — the very scoring ``lm_eval`` runs, so a doc's confidence here equals its
confidence in an lm-eval evaluation of the same checkpoint. Rows (task, doc id, phase, step,
P(gold vs distractor)) go to ``dynamics.parquet`` in the output folder at the end of training.

Single-process training only (the runner attaches it in-process, not under a launcher).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from lm_forget.io import atomic_file

logger = logging.getLogger(__name__)

DYNAMICS_FILE = "dynamics.parquet"
COLUMNS = ("task", "doc_id", "phase", "step", "p_gold")


def choice_requests(docs: Sequence[Mapping[str, Any]]) -> list[Any]:
    """lm-eval ``loglikelihood`` Instances, two per doc ([choice 0, choice 1]), as the task YAMLs build them."""
    from lm_eval.api.instance import Instance

    from lm_forget.data.docs import scoring_pair

    requests = []
    for doc in docs:
        for i in (0, 1):
            requests.append(Instance(request_type="loglikelihood", doc=dict(doc), arguments=scoring_pair(doc, i),
                                     idx=i))
    return requests


def score_docs(model: Any, tokenizer: Any, docs: Sequence[Mapping[str, Any]], *,
               batch_size: int = 16, lm: Any = None) -> list[float]:
    """P(gold vs distractor) per doc = sigmoid(ll_gold - ll_other), from lm-eval HFLM's loglikelihood.

    ``lm``: an HFLM already wrapping ``model`` (reused across scorings of one training run).
    """
    from lm_eval.models.huggingface import HFLM

    was_training = model.training
    model.eval()
    try:
        lm = lm or HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        results = lm.loglikelihood(choice_requests(docs), disable_tqdm=True)
    finally:
        model.train(was_training)
    out = []
    for j, doc in enumerate(docs):
        ll = (results[2 * j][0], results[2 * j + 1][0])
        gold = int(doc["label"])
        out.append(1.0 / (1.0 + math.exp(ll[1 - gold] - ll[gold])))
    return out


def sample_pool(docs: Sequence[Mapping[str, Any]], limit: int | None) -> list[Mapping[str, Any]]:
    """At most ``limit`` docs per task: those with the smallest stable hash of (task, doc id), in pool order.

    The choice depends on the doc alone, so subsets nest: the docs a fine-tune run keeps from a pool that
    contain a forget cell's docs are kept by that cell too (learned-at and forgotten-at join per doc).
    """
    if limit is None:
        return list(docs)
    from lm_forget.data.hashing import stable_int

    by_task: dict[str, list[tuple[int, int]]] = {}
    for i, doc in enumerate(docs):
        by_task.setdefault(str(doc["task"]), []).append((stable_int("dynamics", doc["task"], doc["id"]), i))
    keep = {i for ranked in by_task.values() for _, i in sorted(ranked)[:limit]}
    return [doc for i, doc in enumerate(docs) if i in keep]


def interval_steps(every: float, max_steps: int, num_train_epochs: float) -> int:
    """Optimizer steps between scorings: ``every`` steps (>= 1) or that fraction of an epoch (< 1)."""
    if every <= 0:
        raise ValueError(f"dynamics interval must be positive, got {every!r}")
    if every >= 1:
        return int(every)
    steps_per_epoch = max_steps / max(num_train_epochs, 1e-9)
    return max(1, round(every * steps_per_epoch))


class DynamicsCallback(TrainerCallback):
    """Score ``docs`` at step 0, every interval, and at the end; write ``dynamics.parquet`` to ``output_dir``."""

    def __init__(self, docs: Sequence[Mapping[str, Any]], tokenizer: Any, *, phase: str, every: float,
                 output_dir: str | Path, batch_size: int = 16) -> None:
        self.docs = list(docs)
        self.tokenizer = tokenizer
        self.phase = phase
        self.every = every
        self.output_dir = Path(output_dir)
        self.batch_size = batch_size
        self.interval = 1
        self.rows: list[dict[str, Any]] = []
        self._scored: set[int] = set()
        self._lm: Any = None

    def _score(self, model: Any, step: int) -> None:
        if step in self._scored:
            return
        self._scored.add(step)
        if self._lm is None or self._lm.model is not model:
            from lm_eval.models.huggingface import HFLM

            self._lm = HFLM(pretrained=model, tokenizer=self.tokenizer, batch_size=self.batch_size)
        scores = score_docs(model, self.tokenizer, self.docs, batch_size=self.batch_size, lm=self._lm)
        for doc, p in zip(self.docs, scores, strict=True):
            self.rows.append({"task": doc["task"], "doc_id": doc["id"], "phase": self.phase, "step": step,
                              "p_gold": p})

    def on_init_end(self, args, state, control, **kwargs):
        if self.tokenizer is None:
            self.tokenizer = kwargs.get("processing_class")

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.tokenizer is None:
            self.tokenizer = kwargs.get("processing_class")
        self.interval = interval_steps(self.every, state.max_steps, args.num_train_epochs)
        if state.is_world_process_zero and model is not None:
            self._score(model, int(state.global_step))

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.is_world_process_zero and model is not None and state.global_step % self.interval == 0:
            self._score(model, int(state.global_step))

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        if model is not None:
            self._score(model, int(state.global_step))
        self.write()

    def write(self) -> Path:
        """``dynamics.parquet`` (rows in ``COLUMNS``), written atomically."""
        import pandas as pd

        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / DYNAMICS_FILE
        with atomic_file(path) as tmp:
            pd.DataFrame(self.rows, columns=list(COLUMNS)).to_parquet(tmp, index=False)
        logger.info("wrote %s (%d rows, every %d steps)", path, len(self.rows), self.interval)
        return path
