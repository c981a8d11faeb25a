"""``lm_forget.evaluate``: lm-eval's ``simple_evaluate`` on the suite, with per-doc samples, in one call."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lm_forget.data.config import DataConfig
from lm_forget.modeling import ModelRef

log = logging.getLogger(__name__)


def evaluate(model: ModelRef | str, tasks: str | Sequence[str], *, adapter: str | Path | None = None,
             limit: int | float | None = None, batch_size: int | str = 8, device: str = "cpu",
             num_fewshot: int | None = None, data: DataConfig | Mapping[str, Any] | None = None,
             forget_set: int | None = None, task_dirs: Sequence[str | Path] = (), backend: str = "hf",
             model_args: Mapping[str, Any] | None = None, output_path: str | Path | None = None,
             bootstrap_iters: int = 0) -> dict[str, Any]:
    """Evaluate ``model`` on ``tasks`` with lm-eval (``log_samples=True``); return ``simple_evaluate``'s dict.

    Args:
        model: a :class:`~lm_forget.modeling.ModelRef` (base, revision, dtype, adapter, ...) or a Hub id / folder.
        tasks: suite task names (``forget_boolq``), names from ``task_dirs``, or any lm-eval task.
        adapter: a PEFT adapter folder on ``model`` (when ``model`` is a string).
        limit: docs per task (lm-eval's ``limit``: a count, or a fraction below 1); None: every doc.
        batch_size, device, num_fewshot, backend: as lm-eval's (``backend`` is its ``model``: ``hf``, ``vllm``).
        data: how the suite's docs are sampled (:class:`~lm_forget.data.config.DataConfig` or its fields);
            default: the defaults, as ``lm-forget train`` and ``lm-forget run`` use them.
        forget_set: score the forget set instead of the held-out docs: the first ``forget_set`` docs of the
            training pool, i.e. exactly what a run with ``num_examples=forget_set`` trained on (``limit`` ignored).
        task_dirs: extra folders of task YAMLs (derived tasks), as ``lm_eval --include_path``.
        model_args: extra lm-eval model arguments (``{"max_length": 512}``).
        output_path: also save the results as ``lm_eval --log_samples --output_path`` does (a folder
            ``lm-forget analyze`` and :func:`lm_forget.analyze` read).
        bootstrap_iters: lm-eval's own stderr bootstrap (0: none; the analysis computes its own intervals).

    Returns:
        lm-eval's results dict: ``results`` (scores per task), ``configs``, ``config`` (model args) and
        ``samples`` (per task, one record per doc with its loglikelihoods and ``acc``), ready for
        :func:`lm_forget.analyze`.
    """
    import lm_eval

    from lm_forget.run.evaluate import suite_task_manager

    names = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else [str(t) for t in tasks]
    ref = _model_ref(model, adapter)
    settings = data if isinstance(data, DataConfig) else DataConfig(**dict(data or {}))
    metadata = settings.to_metadata() | ({"eval_on": "train", "train_size": int(forget_set)} if forget_set else {})
    manager = suite_task_manager(names, [str(Path(d).resolve()) for d in task_dirs], metadata)
    args = ",".join(a for a in (ref.model_args(), *(f"{k}={v}" for k, v in (model_args or {}).items())) if a)
    tracker = None
    if output_path is not None:
        from lm_eval.loggers import EvaluationTracker

        tracker = EvaluationTracker(output_path=str(output_path))
    results = lm_eval.simple_evaluate(
        model=backend, model_args=args, tasks=names, task_manager=manager, batch_size=batch_size, device=device,
        limit=None if forget_set else limit, num_fewshot=num_fewshot, log_samples=True, metadata=metadata,
        bootstrap_iters=bootstrap_iters, evaluation_tracker=tracker)
    if results is None:  # non-zero ranks of a distributed evaluation
        return {}
    if tracker is not None:
        from lm_forget.run.evaluate import save_output

        # lm-eval's saver rewrites the samples it writes (numbers to strings): it gets a copy
        save_output(tracker, {k: v for k, v in results.items() if k != "samples"}, copy.deepcopy(results["samples"]))
        log.info("lm-eval results saved under %s", output_path)
    return results


def _model_ref(model: ModelRef | str | Path, adapter: str | Path | None) -> ModelRef:
    if isinstance(model, ModelRef):
        if adapter is not None:
            from lm_forget.errors import ConfigError

            raise ConfigError("evaluate: the adapter goes in the ModelRef (ref.with_adapter(...)), not adapter=")
        return model
    return ModelRef(str(model), adapter=str(adapter) if adapter is not None else None)
