"""Before any work: warn when a configured size can never reach a verdict at the configured margin and alpha.

A forget set smaller than :func:`~lm_forget.analysis.decide.near_chance_n` can never be called near chance;
a held-out split smaller than the exact bound's n can never show a task kept or relearned; fewer forgotten
tasks than :func:`~lm_forget.analysis.findings_build.tasks_needed` leave every predictor test untestable.
These are warnings, not errors: the study still runs and its report says ``needs >= N``.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: task-level predictors per registered predictor (one per phase), for the number of hypotheses
PREDICTORS_PER_NAME = 2


def analysis_options(config: Any) -> Any:
    """The run's ``AnalysisOptions`` (``analysis.options``; lists as tuples; flip labels: the flipped ratio)."""
    from lm_forget.analysis.options import AnalysisOptions

    options = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(config.analysis.options).items()}
    if config.forget.method == "flipped_labels" and not config.forget.methods:
        options.setdefault("outcome", "forget_ratio_flipped")
    return AnalysisOptions(**options)


def reach_warnings(config: Any, pools: dict[str, int] | None = None) -> list[str]:
    """One line per configured size that can never reach a verdict (empty: every verdict is reachable).

    ``pools``: forgotten task -> docs its forget pool holds, when the caller knows (a pool smaller than the
    configured size scores only its docs: the demo's small families)."""
    from lm_forget.analysis.decide import near_chance_n, one_sided_n
    from lm_forget.analysis.findings_build import tasks_needed

    if "analyze" not in config.stages:
        return []
    opts = analysis_options(config)
    where = f"at margin {opts.margin:g}, alpha {opts.alpha:g} (analysis.options)"
    out = []
    needed = near_chance_n(0.5, opts.margin, opts.alpha)
    for n in config.forget_sizes:
        size = int(n or config.data.train_size)
        if size < needed:
            out.append(f"forget.num_examples {size}: a forget set of {size} docs can never be called near chance "
                       f"{where}: needs >= {needed} docs. Raise the size, or widen the margin.")
            continue
        short = {t: k for t, k in (pools or {}).items() if min(k, size) < needed}
        if short:
            listed = ", ".join(f"{t} holds {k}" for t, k in sorted(short.items()))
            out.append(f"forget.num_examples {size}: only the pool's docs are scored ({listed}), and a forget set "
                       f"of fewer than {needed} docs can never be called near chance {where}.")
    limit = config.eval.limit
    held = min(config.data.eval_size, int(limit)) if isinstance(limit, int) else config.data.eval_size
    paired = one_sided_n(1 - opts.margin, opts.alpha)
    if held < paired:
        verdicts = "kept or relearned" if "eval_relearn" in config.stages else "kept"
        out.append(f"held-out split of {held} docs (data.eval_size / eval.limit): no task can be called {verdicts} "
                   f"{where}: needs >= {paired} docs.")
    names = opts.predictors or ("confidence", "difficulty") + (("variance",) if "features" in config.stages else ())
    hypotheses = PREDICTORS_PER_NAME * len(names)
    tasks = len(set(config.tasks.forget) & set(config.tasks.eval))  # the analysis' diagonal: one point per task
    n_tasks = tasks_needed(hypotheses, opts)
    if tasks and tasks < n_tasks:
        out.append(f"tasks.forget: {tasks} forgotten and evaluated task(s): the task-level predictor tests "
                   f"({hypotheses} hypotheses, {opts.correction}, {opts.n_permutations} permutations) can never be "
                   f"significant at alpha {opts.alpha:g}: needs >= {n_tasks} tasks.")
    return out


def warn_unreachable(config: Any) -> list[str]:
    """Log :func:`reach_warnings` (a logger warning each) and return them."""
    lines = reach_warnings(config)
    for line in lines:
        log.warning("unreachable verdict: %s", line)
    return lines
