"""Retain sets: docs the loss keeps the model good on while it forgets (grad_diff, rmu, optional for others).

Default: the training pools of the other tasks the starting model was fine-tuned on (read from the
``--init_adapter`` run's ``forget_config.json``), or the tasks named by ``--retain``. Docs are ordered by a
stable hash and the first ``--retain_size`` kept (default: as many as forget docs). A retain doc must never be
a doc the study evaluates: not in the forget set, not in the held-out split of any forget or retain task —
checked on content (normalized question + option set), an error otherwise.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_forget.data.hashing import stable_int
from lm_forget.data.normalize import dedup_key
from lm_forget.errors import ConfigError
from lm_forget.formats import RUN_STATE_FILE

if TYPE_CHECKING:
    from lm_forget.train.config import ForgetConfig

logger = logging.getLogger(__name__)


def retain_tasks(config: ForgetConfig) -> list[str]:
    """``--retain`` if given, else the fine-tuned tasks of ``--init_adapter`` other than the forget tasks."""
    if config.retain:
        return list(config.retain)
    finetuned: list[str] = []
    state = Path(str(config.init_adapter)) / RUN_STATE_FILE if config.init_adapter else None
    if state is not None and state.is_file():
        finetuned = list(json.loads(state.read_text(encoding="utf-8")).get("tasks") or [])
    others = [t for t in finetuned if t not in config.tasks]
    if not others:
        raise ConfigError(
            f"method {config.method!r} needs a retain set, and none could be derived: "
            + ("--init_adapter was fine-tuned on no task besides " + ", ".join(config.tasks)
               if finetuned else "no --init_adapter run with a forget_config.json to read the fine-tuned tasks from")
            + "; pass --retain TASK [...] (e.g. another task the model was fine-tuned on)"
        )
    return others


def doc_key(doc: Mapping[str, Any]) -> str:
    """What makes two docs the same question (the suite's dedup key)."""
    return dedup_key(doc["prompt"], [*doc["choices"], doc.get("continuation") or ""])


def load_retain_docs(config: ForgetConfig, forget_docs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The retain set for ``config`` (never overlapping an evaluated doc; ConfigError otherwise)."""
    from lm_forget.data.api import load_docs

    tasks = retain_tasks(config)
    size = config.retain_size or len(forget_docs)
    data = config.data_config
    # a bigger pool only appends docs (pools nest), so the retain set can draw past the forget set's pool
    kwargs = dict(task_dirs=[Path(d) for d in config.task_dirs],
                  data=replace(data, train_size=max(data.train_size, config.num_examples, size)))
    forget_ids = {doc["id"] for doc in forget_docs}
    pool = [doc for task in tasks for doc in load_docs(task, "train", **kwargs) if doc["id"] not in forget_ids]
    if not pool:
        raise ConfigError(f"--retain {tasks}: their training pools hold no doc outside the forget set")
    pool.sort(key=lambda d: stable_int("retain-order", data.seed, d["task"], d["id"]))
    chosen = pool[:size]
    if len(chosen) < size:
        logger.warning("retain set: only %d docs in %s, fewer than --retain_size %d", len(chosen), tasks, size)
    evaluated = {doc_key(d): f"the forget set ({d['id']})" for d in forget_docs}
    for task in dict.fromkeys([*config.tasks, *tasks]):
        held_out = load_docs(task, "test", **kwargs)
        evaluated.update({doc_key(d): f"{task}'s held-out split ({d['id']})" for d in held_out})
    clashes = [(d["id"], evaluated[doc_key(d)]) for d in chosen if doc_key(d) in evaluated]
    if clashes:
        shown = "; ".join(f"{a} = {b}" for a, b in clashes[:3])
        raise ConfigError(
            f"retain set overlaps {len(clashes)} evaluated doc(s): {shown}. Retaining on an evaluated doc would "
            "hide its forgetting; pick other --retain tasks or fix the duplicated data"
        )
    logger.info("retain set: %d docs from %s", len(chosen), ", ".join(tasks))
    return chosen
