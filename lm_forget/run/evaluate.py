"""Eval steps: lm-eval's ``simple_evaluate`` with ``--log_samples``, saved exactly as lm-eval's CLI saves it.

The output folder of an eval step is what ``lm_eval ... --log_samples --output_path DIR`` would have
written (``DIR/<model>/results_<ts>.json`` + ``samples_<task>_<ts>.jsonl``), so ``lm-forget analyze``
reads runner results and hand-made lm_eval runs alike.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lm_forget.errors import DataError
from lm_forget.io import atomic_dir
from lm_forget.modeling import ModelRef
from lm_forget.run.config import RunConfig
from lm_forget.run.models import ModelPool
from lm_forget.run.vllm_pool import VLLMPool

log = logging.getLogger(__name__)


def task_manager_for(config: RunConfig, tasks: list[str], docs: dict[str, Any] | None = None):
    """An lm-eval TaskManager that sees the suite and the config's task folders.

    lm-eval's ~14k built-in tasks are indexed only when a task is not one of ours (seconds saved per run).
    ``docs`` overrides the metadata (``{"eval_on": "train", "train_size": N}``: score the forget set).
    """
    return suite_task_manager(tasks, [str(p) for p in config.task_dir_paths], eval_metadata(config, docs))


def suite_task_manager(tasks: list[str], include: list[str], metadata: dict[str, Any]):
    """A TaskManager over the suite and ``include`` that knows ``tasks``, lm-eval's built-ins indexed only if needed.

    ``metadata``: the data settings. simple_evaluate ignores its ``metadata`` argument when given a TaskManager,
    so they must reach our custom_dataset through the manager itself.
    """
    from lm_forget.harness import task_manager

    manager = task_manager(include_path=include or None, include_defaults=False, metadata=metadata)
    if all(t in manager.all_tasks for t in tasks):
        return manager
    return task_manager(include_path=include or None, metadata=metadata)


def eval_metadata(config: RunConfig, docs: dict[str, Any] | None = None) -> dict[str, Any]:
    """What our ``custom_dataset`` reads from lm-eval's metadata: the data build settings (+ ``docs``)."""
    return {**config.data.to_metadata(), **(docs or {})}


def load_tasks(manager: Any, tasks: list[str]) -> list[Any] | None:
    """lm-eval Task objects for ``tasks`` (docs loaded once; reusable across evaluations of many models).

    None when a name is a group or a tag (a utility task such as ``mmlu``): lm-eval takes prebuilt Task objects
    but not groups, so those are passed by name and lm-eval builds them, with the group's own aggregate.
    """
    if any(name not in manager.all_subtasks for name in tasks):
        return None
    loaded = manager.load(list(tasks))["tasks"]
    return [loaded[name] for name in tasks]


def evaluate_model(config: RunConfig, ref: ModelRef, tasks: list[str], out_dir: Path, *,
                   pool: ModelPool | VLLMPool | None = None, manager: Any = None,
                   task_objects: list[Any] | None = None, docs: dict[str, Any] | None = None,
                   bootstrap_iters: int = 0) -> dict[str, Any]:
    """Evaluate ``ref`` on ``tasks``; write lm-eval's results + samples into ``out_dir`` atomically.

    ``task_objects`` (from :func:`load_tasks`) skips rebuilding the tasks' datasets for every model: a
    matrix evaluates the same tasks once per cell. ``docs`` overrides the data metadata (see
    :func:`task_manager_for`; a given ``manager`` must have been built with the same). ``bootstrap_iters`` > 0:
    lm-eval computes its stderr of every metric (0: "N/A"; the analysis bootstraps the samples itself).
    Returns ``{task: {"acc": ..., "acc_norm": ...}}``.
    """
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    settings = config.eval
    manager = manager or task_manager_for(config, tasks, docs)
    common: dict[str, Any] = dict(
        tasks=list(task_objects) if task_objects is not None else list(tasks), task_manager=manager,
        # a forget set is scored whole: exactly the N docs the forget model was trained on
        limit=None if docs else settings.limit, num_fewshot=settings.num_fewshot,
        log_samples=True, metadata=eval_metadata(config, docs), bootstrap_iters=bootstrap_iters,
    )
    with atomic_dir(out_dir) as tmp:
        tracker = EvaluationTracker(output_path=str(tmp), **hub_log_args(settings.hf_hub_log_args))
        if settings.backend == "vllm" and isinstance(pool, VLLMPool):  # one engine, the adapter per request
            with pool.use(ref) as lm:
                results = lm_eval.simple_evaluate(model=lm, model_args=ref.model_args(),
                                                  evaluation_tracker=tracker, **common)
        elif settings.backend == "hf" and isinstance(pool, ModelPool):
            from lm_eval.models.huggingface import HFLM

            with pool.use(ref) as (model, tokenizer):
                lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size,
                          **settings.model_args)
                results = lm_eval.simple_evaluate(model=lm, model_args=ref.model_args(),
                                                  evaluation_tracker=tracker, **common)
        else:
            model_args = ref.model_args()
            if settings.backend == "vllm" and ref.adapter:
                # lm-eval's vLLM backend takes LoRA adapters as lora_local_path, not peft=
                model_args = model_args.replace(f"peft={ref.adapter}", f"lora_local_path={ref.adapter}")
                model_args += ",enable_lora=True"
            extra = ",".join(f"{k}={v}" for k, v in settings.model_args.items())
            results = lm_eval.simple_evaluate(
                model=settings.backend, model_args=",".join(a for a in (model_args, extra) if a),
                batch_size=settings.batch_size, device=config.device, evaluation_tracker=tracker, **common,
            )
        if results is None:  # non-zero ranks of a distributed evaluation
            return {}
        samples = results.pop("samples")
        if settings.wandb_args:
            log_to_wandb(settings.wandb_args, results, samples)
        save_output(tracker, results, samples)
        # lm-eval logs (and swallows) write failures; a result that did not land must not count as done
        if not list(tmp.rglob("results_*.json")):
            raise DataError(f"lm-eval wrote no results file under {tmp}; see the log above.")
    return summarize(results)


def save_output(tracker: Any, results: dict[str, Any], samples: dict[str, Any]) -> None:
    """Save ``results`` (without samples) and ``samples`` through lm-eval's tracker, as ``lm_eval --log_samples``
    does: ``results_<ts>.json`` and one ``samples_<task>_<ts>.jsonl`` per task."""
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    if tracker.push_results_to_hub or tracker.push_samples_to_hub:  # as lm_eval's CLI does
        tracker.recreate_metadata_card()


def hub_log_args(args: dict[str, Any]) -> dict[str, Any]:
    """``eval.hf_hub_log_args`` for lm-eval's ``EvaluationTracker``; the token only from ``HF_TOKEN``, as its CLI."""
    import os

    out = dict(args)
    if os.environ.get("HF_TOKEN"):
        out["token"] = os.environ["HF_TOKEN"]
    return out


def log_to_wandb(wandb_args: dict[str, Any], results: dict[str, Any], samples: dict[str, Any]) -> None:
    """lm-eval's own W&B logging (what ``lm_eval --wandb_args`` does); a logging failure never fails the step."""
    from lm_eval.loggers import WandbLogger

    try:
        wandb_logger = WandbLogger(dict(wandb_args))
        wandb_logger.post_init(results)
        wandb_logger.log_eval_result()
        wandb_logger.log_eval_samples(samples)
        wandb_logger.run.finish()
    except Exception as exc:  # noqa: BLE001 - as lm_eval's CLI: W&B trouble is logged, the results still land
        log.warning("logging to W&B failed: %s", exc)


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """``{task: {metric: value}}`` from lm-eval's results dict (``acc,none`` -> ``acc``)."""
    table: dict[str, Any] = {}
    for task, metrics in results.get("results", {}).items():
        table[task] = {k.split(",")[0]: v for k, v in metrics.items()
                       if k.split(",")[0] in ("acc", "acc_norm") and isinstance(v, (int, float))}
    return table

