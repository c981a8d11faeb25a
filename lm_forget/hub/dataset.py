"""``lm-forget tasks push REPO_ID``: the built suite as a Hub dataset, one config per task.

Each task's docs (exactly ``lm_forget.data.api.load_docs``) become ``<task>/train-*.parquet`` and
``<task>/test-*.parquet`` (written by ``datasets``); the card (``hub_cards/dataset_card.md``, rendered by
``huggingface_hub.DatasetCard``) declares the configs, so ``load_dataset(REPO_ID, "forget_boolq")``
works, and lists sources, binarization, dedup counts and the citation. The whole suite is one commit.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lm_forget.data.config import DataConfig
from lm_forget.hub.deadline import hub_deadline, resolve_timeout
from lm_forget.paths import hub_cards_dir

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "dataset_card.md"
SPLITS = ("train", "test")


@dataclass
class SuiteUpload:
    """Files of a suite dataset repo, in memory."""

    files: dict[str, bytes] = field(default_factory=dict)  #: path in repo -> content
    rows: list[dict[str, Any]] = field(default_factory=list)  #: one card table row per task


def parquet_path(task: str, split: str) -> str:
    """Where a task's split lives in the repo (the Hub's ``<config>/<split>-00000-of-00001.parquet`` layout)."""
    return f"{task}/{split}-00000-of-00001.parquet"


def docs_to_parquet(docs: Sequence[dict[str, Any]]) -> bytes:
    """``docs`` as one parquet file, written by ``datasets`` (the library that will read it back)."""
    import datasets

    buffer = io.BytesIO()
    datasets.Dataset.from_list(list(docs)).to_parquet(buffer)
    return buffer.getvalue()


def _dropped(info: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted((info.get("dropped") or {}).items()) if v) or "none"


def _source_dataset(name: str) -> str:
    from lm_forget.data.registry import get_suite_spec
    from lm_forget.data.source import load_source_config

    spec = get_suite_spec(name)
    if spec is None:
        return "–"
    cfg = load_source_config(spec)
    path, sub = cfg.get("dataset_path"), cfg.get("dataset_name")
    if not path:
        return "–"
    link = f"[`{path}`](https://huggingface.co/datasets/{path})"
    return f"{link} ({sub})" if sub else link


def build_suite_upload(tasks: Sequence[str], config: DataConfig, *, task_dirs: Sequence[str] = ()) -> SuiteUpload:
    """Build (or load from cache) every task and turn it into parquet files and a card table row."""
    from lm_forget.data.api import load_task

    upload = SuiteUpload()
    for name in tasks:
        built = load_task(name, task_dirs=task_dirs, data=config, progress=True)
        for split in SPLITS:
            upload.files[parquet_path(name, split)] = docs_to_parquet(built.splits[split])
        report = built.report
        splits = report.get("splits", {})
        upload.rows.append({
            "name": name, "source_task": report.get("source_task", "–"), "dataset": _source_dataset(name),
            "domain": report.get("domain", "derived"),
            "train": len(built.splits["train"]), "test": len(built.splits["test"]),
            "dropped_train": _dropped(splits.get("train", {})), "dropped_test": _dropped(splits.get("test", {})),
        })
    return upload


def render_dataset_card(repo_id: str, upload: SuiteUpload, config: DataConfig) -> Any:
    """A ``DatasetCard`` whose metadata declares one config per task (train/test parquet files)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from lm_forget.train.outputs import package_versions

    configs = [{"config_name": row["name"],
                "data_files": [{"split": split, "path": parquet_path(row["name"], split)} for split in SPLITS]}
               for row in upload.rows]
    card_data = DatasetCardData(
        language=["en"], license="other", pretty_name="lm-forget binarized task suite",
        task_categories=["multiple-choice"], tags=["lm-forget", "unlearning", "forgetting", "lm-eval"],
        configs=configs,
    )
    return DatasetCard.from_template(
        card_data, template_path=str(hub_cards_dir() / TEMPLATE_NAME), repo_id=repo_id,
        first_task=upload.rows[0]["name"], tasks=upload.rows, train_size=config.train_size,
        eval_size=config.eval_size, data_seed=config.seed, versions=package_versions(),
    )


def push_suite(repo_id: str, tasks: Sequence[str], config: DataConfig, *, task_dirs: Sequence[str] = (),
               private: bool = False, timeout: float | None = None, commit_message: str | None = None) -> str:
    """Build ``tasks`` and push them as the dataset ``repo_id`` in one commit; returns the commit URL."""
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    from lm_forget.errors import ConfigError
    from lm_forget.hub.base_model import require_repo_id
    from lm_forget.hub.push import hub_call, refuse_public, require_token

    require_repo_id(repo_id, "the Hub dataset repo")
    if not tasks:
        raise ConfigError("no tasks to push; name them (default: every suite task, 'forget_*')")
    seconds = resolve_timeout(timeout)
    upload = build_suite_upload(tasks, config, task_dirs=task_dirs)
    card = render_dataset_card(repo_id, upload, config)
    require_token(get_token(), repo_id)
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=data) for p, data in upload.files.items()]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode("utf-8")))
    with hub_deadline(seconds) as requests:
        api = HfApi()
        hub_call(lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True),
              f"create dataset repo {repo_id}", seconds, requests)
        if private:
            refuse_public(api, repo_id, "dataset", seconds, requests)
        info = hub_call(lambda: api.create_commit(
            repo_id=repo_id, repo_type="dataset", operations=operations,
            commit_message=commit_message or f"lm-forget suite: {len(upload.rows)} tasks"),
            f"commit {len(operations)} files to dataset {repo_id}", seconds, requests)
    url = str(getattr(info, "commit_url", info))
    logger.info("pushed %d tasks to %s", len(upload.rows), url)
    return url
