"""Where a relearn step's k docs come from, and the pretrained control that relearns on the same docs.

Pools (``relearn.pool``): ``forget_set`` (the first k docs of the forget set), ``held_in`` (the k pool docs right
after it) and ``unrelated`` (k docs of a task that is neither forgotten nor evaluated: Łucki et al.,
arXiv 2409.18025; Hu et al., 2406.13356; Deeb & Roger, 2410.08827). The unrelated task is
``relearn.unrelated_task`` or, by default, a plan-time rule (:func:`unrelated_task_for`): distance measured on
results (e.g. the smallest cross-task accuracy change) would need the results before the plan exists.

The control (``relearn.control``, Feng et al., 2506.00688) relearns the *pretrained* model on the same docs with
the same settings and seed, so what the relearning set teaches by itself can be netted out of the recovery.
"""

from __future__ import annotations

from typing import Any

from lm_forget.errors import ConfigError

UNRELATED_SALT = "relearn_unrelated"  # stable-hash salt of the unrelated docs' order


def _domain(task: str) -> str | None:
    from lm_forget.data.registry import get_suite_spec

    spec = get_suite_spec(task)
    return spec.domain if spec else None


def unrelated_candidates(config: Any) -> list[str]:
    """Tasks that may be relearned as unrelated data: ``tasks.finetune`` (config order), then the suite (registry
    order), without any task of the matrix (``tasks.forget``, ``tasks.eval``)."""
    from lm_forget.data.registry import suite_task_names

    matrix = {*config.tasks.forget, *config.tasks.eval}
    return [t for t in dict.fromkeys([*config.tasks.finetune, *suite_task_names()]) if t not in matrix]


def unrelated_task_for(config: Any, task: str) -> str:
    """The unrelated task relearned after forgetting ``task``: ``relearn.unrelated_task``, or the first candidate
    (:func:`unrelated_candidates`) whose suite domain differs from ``task``'s (the most distant the plan can tell
    apart), else the first candidate. The study's own fine-tuning tasks come first: their docs are built already.
    """
    if config.relearn.unrelated_task:
        return str(config.relearn.unrelated_task)
    candidates = unrelated_candidates(config)
    if not candidates:
        raise ConfigError("relearn.pool: unrelated needs a task outside tasks.forget and tasks.eval, and every "
                          "fine-tuning and suite task is in them; set relearn.unrelated_task to another task (e.g. "
                          "one of tasks.task_dirs), or use relearn.pool: forget_set.")
    other = [t for t in candidates if _domain(t) != _domain(task)]
    return (other or candidates)[0]


def check_unrelated(config: Any, *, check_tasks: bool = True) -> None:
    """``relearn.unrelated_task`` only with pool ``unrelated``, never a task of the matrix; a default exists."""
    section = config.relearn
    if section.pool != "unrelated":
        if section.unrelated_task:
            raise ConfigError(f"relearn.unrelated_task: {section.unrelated_task!r} is set but relearn.pool is "
                              f"{section.pool}; set relearn.pool: unrelated, or drop relearn.unrelated_task.")
        return
    name = section.unrelated_task
    if name:
        for where in ("forget", "eval"):
            if name in getattr(config.tasks, where):
                raise ConfigError(f"relearn.unrelated_task: {name!r} is in tasks.{where}, so it is forgotten or "
                                  "evaluated; name a task outside tasks.forget and tasks.eval (or leave it unset "
                                  "for the default, docs/study.md \"Relearning\").")
        if check_tasks:
            from lm_forget.data.api import resolve_task

            try:
                resolve_task(name, task_dirs=config.task_dir_paths)
            except ConfigError as exc:
                raise ConfigError(f"relearn.unrelated_task: {exc}") from None
    for task in config.tasks.forget:
        unrelated_task_for(config, task)


def unrelated_docs(config: Any, task: str, k: int) -> list[dict[str, Any]]:
    """``k`` docs of ``task``'s training pool, ranked by a stable hash of (data seed, doc id): the same docs on
    every machine, nested across k (the first k of any larger k)."""
    from lm_forget.data.api import load_docs
    from lm_forget.data.hashing import stable_digest
    from lm_forget.errors import DataError

    docs = load_docs(task, "train", task_dirs=config.task_dir_paths, data=config.data)
    if len(docs) < k:
        raise DataError(f"relearn.num_examples: {k} unrelated docs asked of {task}, whose pool holds {len(docs)}; "
                        "lower relearn.num_examples or set relearn.unrelated_task to a larger task.")
    ranked = sorted(docs, key=lambda d: stable_digest(UNRELATED_SALT, config.data.seed, d["id"]))
    return ranked[:k]


def relearn_docs(config: Any, settings: dict[str, Any]) -> tuple[str, list[dict[str, Any]] | None]:
    """The task a relearn (or control) step trains on and its ``k`` gold-label docs: None (the trainer's own
    first ``k`` docs, a subset of the forget set, since pools nest) for ``forget_set``; the ``k`` pool docs after
    the forget set for ``held_in``; :func:`unrelated_docs` for ``unrelated``."""
    pool, k = settings["pool"], settings["num_examples"]
    if pool == "unrelated":
        task = settings["unrelated_task"]
        return task, unrelated_docs(config, task, k)
    task = settings["task"]
    if pool == "forget_set":
        return task, None
    from lm_forget.data.api import load_docs

    docs = load_docs(task, "train", task_dirs=config.task_dir_paths, data=config.data)  # checked: forget + k fit
    n = settings["forget_size"]
    return task, list(docs[n:n + k])


def control_name(settings: dict[str, Any], *, eval_step: bool = False) -> str:
    """Step name of a control: ``relearn_control/<pool>/<trained task>[/n<N>]/s<seed>/k<k>`` (its eval:
    ``eval_relearn_control/...``). It names exactly what the control's docs and seed depend on, so cells that
    relearn the same docs with the same seed share one control."""
    pool = settings["pool"]
    task = settings["unrelated_task"] if pool == "unrelated" else settings["task"]
    size = f"/n{settings['forget_size']}" if pool == "held_in" else ""
    prefix = "eval_relearn_control" if eval_step else "relearn_control"
    return f"{prefix}/{pool}/{task}{size}/s{settings['seed']}/k{settings['num_examples']}"


def control_settings(relearn: dict[str, Any]) -> dict[str, Any]:
    """A control's train settings from one relearn step's: the same docs, training settings and seed, on the
    pretrained model (what is not about the docs, e.g. the forgotten task of an unrelated pool, is dropped)."""
    keep = ["model", "stage", "num_examples", "pool", "seed", "data", "task_dirs", "train"]
    if relearn["pool"] == "unrelated":
        keep.append("unrelated_task")
    else:
        keep.append("task")
    if relearn["pool"] == "held_in":
        keep.append("forget_size")
    return {**{k: relearn[k] for k in keep}, "control": True}
