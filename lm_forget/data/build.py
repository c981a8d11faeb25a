"""Build a forget task's docs: source docs → binarize → dedup → sample/split → cache."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from lm_forget.data import cache
from lm_forget.data.binarize import Binarized, DropDoc, binarize_doc
from lm_forget.data.config import FORMAT_VERSION, DataConfig
from lm_forget.data.dedup import drop_overlap, drop_within
from lm_forget.data.hashing import stable_digest, stable_unit
from lm_forget.data.mirrors import SourceRef, fingerprint, mirror_file, mirror_root
from lm_forget.data.registry import TaskSpec
from lm_forget.data.source import (
    cached_templates,
    config_fingerprint,
    instantiate_source_task,
    load_source_config,
    plan_sources,
    source_docs,
    split_fields,
)
from lm_forget.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class BuiltTask:
    """A forget task's docs by split (``train``, ``test``) and the report of how they were made."""

    name: str
    splits: dict[str, list[dict[str, Any]]]
    report: dict[str, Any]


def cache_key(spec: TaskSpec, config: DataConfig, plan_refs: list[str]) -> str:
    """Everything the docs depend on: spec, source config files, data identity, settings, versions."""
    return stable_digest(
        FORMAT_VERSION, spec.name, spec.source_task, spec.source_config, spec.rewrite,
        config_fingerprint(spec), version("lm_eval"), *plan_refs, *sorted(config.to_dict().items()),
    )[:20]


def _where(ref: SourceRef) -> str:
    root = mirror_root()
    return str(mirror_file(ref, root)) if root is not None else ref.describe()


def _binarize_all(task, docs, *, spec: TaskSpec, config: DataConfig, counts: Counter, progress: bool,
                  label: str, ref: SourceRef) -> list[tuple[int, Binarized]]:
    from tqdm.auto import tqdm

    out: list[tuple[int, Binarized]] = []
    for index, source_doc in enumerate(tqdm(docs, desc=f"{spec.name} [{label}]", unit="doc",
                                            disable=not progress, leave=False)):
        try:
            item = binarize_doc(task, source_doc, task_name=spec.name, seed=config.seed, rewrite=spec.rewrite)
        except DropDoc as drop:
            counts[drop.reason] += 1
            continue
        except Exception as exc:
            fields = ", ".join(sorted(source_doc)) if isinstance(source_doc, dict) else "?"
            raise DataError(
                f"{_where(ref)}: row {index + 1} does not fit lm-eval task {spec.source_task!r} "
                f"({type(exc).__name__}: {exc}); the row has fields [{fields}]. The data must follow the "
                "Hugging Face schema that task reads (see its YAML in lm_eval/tasks)."
            ) from None
        out.append((index, item))
    return out


def _sample(items: list[tuple[int, Binarized]], *, spec: TaskSpec, split: str, size: int,
            seed: int) -> list[dict[str, Any]]:
    """Deterministic hashed order; the first ``size`` docs (so smaller pools nest inside larger ones)."""
    ordered = sorted(items, key=lambda pair: stable_digest(seed, spec.name, split, pair[1].key, "order"))
    docs = []
    for index, item in ordered[:size]:
        doc = {"id": f"{spec.name}/{split}/{item.key[:16]}", "task": spec.name, "split": split,
               "source_index": index, **item.doc}
        docs.append(doc)
    return docs


def build_task(spec: TaskSpec, config: DataConfig, *, progress: bool = False) -> BuiltTask:
    """Build the docs of ``spec`` from its source (no cache)."""
    cfg = load_source_config(spec)
    plan = plan_sources(cfg)
    task = instantiate_source_task(cfg, plan)
    raw = source_docs(task, plan)
    with cached_templates():
        return _build_from_docs(spec, config, task, plan, raw, progress=progress)


def _build_from_docs(spec: TaskSpec, config: DataConfig, task, plan, raw: dict[str, Any], *,
                     progress: bool) -> BuiltTask:
    counts = {"train": Counter(), "test": Counter()}
    eval_items = _binarize_all(task, raw["eval"], spec=spec, config=config, counts=counts["test"],
                               progress=progress, label="eval split", ref=plan.eval)
    if plan.carve_out:
        train_items = [p for p in eval_items if stable_unit("carve", spec.name, p[1].key) < config.carve_fraction]
        eval_items = [p for p in eval_items if stable_unit("carve", spec.name, p[1].key) >= config.carve_fraction]
        source_rows = {"train": len(train_items), "test": len(eval_items)}
    else:
        train_items = _binarize_all(task, raw["train"], spec=spec, config=config, counts=counts["train"],
                                    progress=progress, label="train split", ref=plan.train)
        source_rows = {"train": len(raw["train"]), "test": len(raw["eval"])}

    train_items = drop_within(train_items, counts["train"])
    eval_items = drop_overlap(drop_within(eval_items, counts["test"]), train_items, counts["test"])

    splits = {
        "train": _sample(train_items, spec=spec, split="train", size=config.train_size, seed=config.seed),
        "test": _sample(eval_items, spec=spec, split="test", size=config.eval_size, seed=config.seed),
    }
    available = {"train": len(train_items), "test": len(eval_items)}
    report = {
        "task": spec.name,
        "source_task": spec.source_task,
        "source_config": spec.source_config,
        "domain": spec.domain,
        "rewrite": spec.rewrite,
        "note": spec.note,
        "format_version": FORMAT_VERSION,
        "lm_eval_version": version("lm_eval"),
        "data_config": config.to_dict(),
        "carve_out": plan.carve_out,
        "sources": {
            "train": (f"carved from {plan.eval.describe()} (fraction {config.carve_fraction})"
                      if plan.carve_out else plan.train.describe()),
            "test": plan.eval.describe(),
        },
        "splits": {
            split: {
                "source_rows": source_rows[split],
                "dropped": dict(sorted(counts[split].items())),
                "available": available[split],
                "size": len(splits[split]),
            }
            for split in ("train", "test")
        },
    }
    if plan.carve_out:
        report["splits"]["test"]["note"] = "binarization drops of the carved split are counted under test"
    log.info("built %s: train %d, test %d docs", spec.name, len(splits["train"]), len(splits["test"]))
    return BuiltTask(spec.name, splits, report)


def load_or_build(spec: TaskSpec, config: DataConfig, *, refresh: bool = False,
                  progress: bool = False) -> BuiltTask:
    """Docs from the cache, building (under a lock) only on a miss or with ``refresh``."""
    plan = plan_sources(split_fields(spec))
    key = cache_key(spec, config, [fingerprint(ref) for ref in plan.refs()])
    if not refresh and (hit := cache.read_entry(spec.name, key)) is not None:
        return BuiltTask(spec.name, *hit)
    try:
        with cache.lock_for(spec.name, key):
            if not refresh and (hit := cache.read_entry(spec.name, key)) is not None:
                return BuiltTask(spec.name, *hit)
            built = build_task(spec, config, progress=progress)
            built.report["cache_key"] = key
            cache.write_entry(spec.name, key, built.splits, built.report)
            return built
    except PermissionError as exc:
        raise _unwritable_cache(exc) from None
    except OSError as exc:
        import errno

        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        raise _unwritable_cache(exc) from None


def _unwritable_cache(exc: OSError) -> DataError:
    from lm_forget.paths import cache_root

    return DataError(f"cannot write the docs cache in {cache_root()} ({exc.strerror or exc}); point LM_FORGET_CACHE "
                     "at a writable folder, e.g. export LM_FORGET_CACHE=$HOME/.cache/lm_forget")

