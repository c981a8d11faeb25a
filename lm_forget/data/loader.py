"""The ``custom_dataset`` function every lm-forget task YAML points at.

lm-eval calls it as ``custom_dataset(**metadata, **dataset_kwargs)``; it returns a ``DatasetDict`` with
``train`` (the forget pool) and ``test`` (held-out evaluation). ``--metadata '{"eval_on": "train"}'``
scores the forget pool instead of the held-out split; ``data_seed``, ``train_size`` and ``eval_size``
change the build.
"""

from __future__ import annotations

from typing import Any

from lm_forget.errors import ConfigError, DataError


def custom_dataset(**kwargs: Any):
    """Build or load a forget task's docs as a ``datasets.DatasetDict`` (train, test)."""
    import datasets

    from lm_forget.data.api import docs_from_kwargs

    splits = docs_from_kwargs(kwargs)
    eval_on = kwargs.get("eval_on", "test")
    if eval_on not in ("test", "train"):
        raise ConfigError(f"eval_on must be 'test' or 'train', got {eval_on!r}")
    for split, docs in splits.items():
        if not docs:
            raise DataError(f"{kwargs.get('forget_task') or kwargs.get('docs_dir')}: the {split} split is empty.")
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(splits["train"]),
            "test": datasets.Dataset.from_list(splits[eval_on]),
        }
    )
