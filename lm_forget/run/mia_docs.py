"""The docs a membership-inference step compares: the forget set (members) and two sets of non-members.

- ``same_split``: docs of the forget set's own task and split that no model of the study was trained on: the
  training pool's hashed order (``data.build``: pools nest) continued past every pool a step may train on
  (:func:`study_reach`), as many as the forget set. Same distribution as the forget set, so a model that never
  saw either set scores an AUC of 0.5 within its interval (the planted check).
- ``held_out``: the held-out split lm-eval scores. On sources whose two splits differ in kind (SST-2: phrases in
  train, sentences in validation) even the pretrained model tells them apart; kept as a second, labelled row.

When the split holds fewer docs past the study's pools than the forget set, ``same_split`` takes what there is
(a warning says how many); with fewer than two its AUC is undefined and the report says why and how to fix it,
beside the ``held_out`` row. Refusing at plan time would need every task built before the plan exists.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

log = logging.getLogger(__name__)


def study_reach(config: Any) -> int:
    """How many docs of a task's hashed training order a step of the study may train on: ``data.train_size``
    (fine-tune, forget, relearn pools are prefixes of it), or a larger ``retain_size`` (retain sets draw past it).
    """
    sizes = [config.data.train_size]
    sizes += [m.retain_size for m in config.forget.methods if m.retain_size]
    return int(max(sizes))


def same_split_docs(task: str, count: int, *, reach: int, task_dirs: Any, data: Any) -> list[dict[str, Any]]:
    """Up to ``count`` docs of ``task``'s training order right after its first ``reach`` (never trained on)."""
    from lm_forget.data.api import load_docs

    docs = load_docs(task, "train", task_dirs=task_dirs, data=replace(data, train_size=reach + count))[reach:]
    if len(docs) < count:
        log.warning("%s: %d docs of the training split lie past the study's pools (%d docs), fewer than the "
                    "forget set's %d: the same-split membership comparison uses %d", task, len(docs), reach,
                    count, len(docs))
    return docs
