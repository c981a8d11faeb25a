"""The report's utility section: what forgetting one task cost on other abilities (``tasks.utility``).

Per forget cell and utility task (any lm-eval task, not binarized), for every metric lm-eval reported:

- lm-eval's own aggregate (``acc``, ``acc_norm``, ``f1``, ``exact_match``...) of the pretrained model, the
  fine-tuned model the cell started from, and the model after forgetting;
- the change after forgetting - fine-tuned, with an interval: a paired bootstrap over docs from the logged
  samples (the same docs, matched by lm-eval's ``doc_id`` and ``doc_hash``, scored in both phases; each
  resample re-aggregates the per-doc values with lm-eval's own aggregation function, so ``f1`` or ``mcc``
  are resampled as corpus metrics), or, where there are no per-doc samples (a group's aggregate), a normal
  interval from lm-eval's stderr of both phases (unpaired: conservative, as the phases share docs).

Not binarized, not part of the matrix, no verdict: a description of collateral damage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.report import ci_text, markdown_table
from lm_forget.analysis.sections import SectionData, StudyContext, records, register_section, table_frame
from lm_forget.analysis.uncertainty import Interval, resample_indices, stable_rng
from lm_forget.errors import DataError
from lm_forget.formats import lm_eval_run, samples_file

PHASES = ("pretrained", "finetuned", "forget")
PAIRED, STDERR = "paired bootstrap over docs", "lm-eval stderr (normal, unpaired)"


@dataclass
class UtilityCell:
    """Where one forget cell's utility evaluations are.

    Attributes:
        cell: the forget cell's id.
        task: the forgotten task.
        n: forget-set size.
        seed: forget seed (``f<fine-tune seed>s<seed>`` on a fine-tune seed axis).
        method: the forgetting method's id on a ``forget.methods`` axis (None: one method).
        evals: phase (pretrained, finetuned, forget) -> lm-eval output folder of its utility evaluation.
    """

    cell: str
    task: str
    n: int | None
    seed: int | str
    method: str | None = None
    evals: dict[str, Path] = field(default_factory=dict)


@dataclass
class UtilityRun:
    """One lm-eval output folder: its results JSON, and per (task, filter) the per-doc records of its samples."""

    results_path: Path
    results: dict[str, Any]
    docs: dict[tuple[str, str], dict[tuple[Any, str], dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path) -> UtilityRun:
        path, results = lm_eval_run(folder)
        return cls(path, results)

    def top_tasks(self) -> list[str]:
        """The tasks, groups and tags as listed (a group's subtasks are part of its aggregate, not rows)."""
        inner = {t for subs in (self.results.get("group_subtasks") or {}).values() for t in subs}
        return [t for t in self.results.get("results", {}) if t not in inner]

    def metrics(self, task: str) -> dict[tuple[str, str], tuple[float, float]]:
        """(metric, filter) -> (lm-eval's aggregate, its stderr or NaN) of ``task``."""
        out = {}
        for key, value in (self.results.get("results", {}).get(task) or {}).items():
            metric, _, filt = key.partition(",")
            if not filt or metric.endswith("_stderr") or not isinstance(value, (int, float)):
                continue
            se = self.results["results"][task].get(f"{metric}_stderr,{filt}")
            out[(metric, filt)] = (float(value), float(se) if isinstance(se, (int, float)) else math.nan)
        return out

    def per_doc(self, task: str, filt: str) -> dict[tuple[Any, str], dict[str, Any]]:
        """(doc_id, doc_hash) -> the sample's metric values, for one filter of ``task`` ({} without samples)."""
        if (task, filt) not in self.docs:
            from lm_forget.analysis.samples import read_metric_samples

            path = samples_file(self.results_path, task)
            for f, docs in (read_metric_samples(path) if path.is_file() else {}).items():
                self.docs[(task, f)] = docs
            self.docs.setdefault((task, filt), {})
        return self.docs[(task, filt)]

    def aggregation(self, task: str, metric: str) -> Callable[[list[Any]], float] | None:
        """lm-eval's aggregation function of ``metric`` in ``task`` (its config's, else the metric's default)."""
        from lm_eval.api import registry

        for entry in (self.results.get("configs", {}).get(task) or {}).get("metric_list") or []:
            if entry.get("metric") == metric and isinstance(entry.get("aggregation"), str):
                fn = registry.get_aggregation(entry["aggregation"])
                if fn is not None:
                    return fn
        return registry.get_metric_aggregation(metric)


def paired_change(before: dict, after: dict, metric: str, aggregate: Callable[[list[Any]], float],
                  rng: np.random.Generator, n_bootstrap: int) -> tuple[int, np.ndarray | None]:
    """(docs scored in both phases, bootstrap draws of aggregate(after) - aggregate(before) or None)."""
    from lm_eval.api.metrics import mean

    keys = [k for k in before if k in after and metric in before[k] and metric in after[k]]
    if not keys:
        return 0, None
    idx = resample_indices(len(keys), n_bootstrap, rng)
    if aggregate is mean:  # vectorised: the resampled means of both phases
        b = np.array([float(before[k][metric]) for k in keys])[idx].mean(axis=1)
        a = np.array([float(after[k][metric]) for k in keys])[idx].mean(axis=1)
        return len(keys), a - b
    b_items, a_items = [before[k][metric] for k in keys], [after[k][metric] for k in keys]
    draws = [aggregate([a_items[i] for i in row]) - aggregate([b_items[i] for i in row]) for row in idx]
    return len(keys), np.asarray(draws, dtype=float)


def _stderr_interval(change: float, se_before: float, se_after: float, level: float) -> tuple[float, float]:
    from scipy.stats import norm

    half = norm.ppf(0.5 + level / 2) * math.hypot(se_before, se_after)
    return change - half, change + half


def cell_rows(cell: UtilityCell, runs: dict[Path, UtilityRun], *, level: float = 0.95,
              n_bootstrap: int = 2000) -> list[dict[str, Any]]:
    """One row per (utility task, metric, filter) of one forget cell."""
    missing = [p for p in ("finetuned", "forget") if p not in cell.evals]
    if missing:
        raise DataError(f"utility report: cell {cell.cell} has no {' or '.join(missing)} utility evaluation; "
                        "run the eval stages (eval_finetuned, eval_forget) with tasks.utility.")
    phase = {p: runs.setdefault(folder, UtilityRun.read(folder)) for p, folder in cell.evals.items()}
    ft, fg, pre = phase["finetuned"], phase["forget"], phase.get("pretrained")
    rows = []
    for task in fg.top_tasks():
        before = ft.metrics(task)
        for (metric, filt), (after_value, after_se) in fg.metrics(task).items():
            if (metric, filt) not in before:
                continue
            value, se = before[(metric, filt)]
            change = after_value - value
            row: dict[str, Any] = {**({"method": cell.method} if cell.method else {}), "task": cell.task,
                                   "n": cell.n, "seed": cell.seed, "utility_task": task,
                                   "metric": metric if filt == "none" else f"{metric} ({filt})",
                                   "pretrained": (pre.metrics(task).get((metric, filt), (math.nan,))[0]
                                                  if pre else math.nan),
                                   "finetuned": value, "forget": after_value, "change": change}
            aggregate = fg.aggregation(task, metric)
            rng = stable_rng("utility", cell.cell, task, metric, filt)
            docs, draws = (paired_change(ft.per_doc(task, filt), fg.per_doc(task, filt), metric, aggregate, rng,
                                         n_bootstrap) if aggregate is not None else (0, None))
            if draws is not None:
                iv = Interval.of(change, draws, level)
                row |= {"change_lo": iv.low, "change_hi": iv.high, "docs": docs, "ci": PAIRED}
            elif math.isfinite(se) and math.isfinite(after_se):
                low, high = _stderr_interval(change, se, after_se, level)
                row |= {"change_lo": low, "change_hi": high, "docs": math.nan, "ci": STDERR}
            else:
                row |= {"change_lo": math.nan, "change_hi": math.nan, "docs": math.nan,
                        "ci": "undefined: no per-doc samples and no lm-eval stderr"}
            rows.append(row)
    return rows


def utility_data(cells: Sequence[UtilityCell], *, level: float = 0.95, n_bootstrap: int = 2000
                 ) -> SectionData | None:
    """The section's data from ``cells`` (table ``utility``); None without rows."""
    runs: dict[Path, UtilityRun] = {}  # a fine-tuned model's run is read once for all its cells
    rows = [r for c in cells for r in cell_rows(c, runs, level=level, n_bootstrap=n_bootstrap)]
    return SectionData({"utility": table_frame(rows)}) if rows else None


def render_utility(data: SectionData, opts: AnalysisOptions) -> list[str]:
    """The section's text from its ``utility`` table."""
    import pandas as pd

    rows, level = records(data.tables["utility"]), opts.confidence_level
    keys = (["method"] if any(r.get("method") for r in rows) else []) + ["task", "n", "seed", "utility_task",
                                                                          "metric"]
    headers = [{"task": "forgotten", "n": "forget-set size", "utility_task": "utility task"}.get(k, k) for k in keys]
    headers += ["pretrained", "fine-tuned", "after forget", f"change [{level:.0%} CI]", "docs", "interval"]
    body = [[*(str(row[k]) for k in keys), *(row.get(p, math.nan) for p in PHASES),
             ci_text(row.get("change"), row.get("change_lo"), row.get("change_hi")),
             str(int(row["docs"])) if "docs" in row else "", row["ci"]] for row in rows]
    return ["Other abilities, scored by lm-eval with its own metrics and aggregation on the utility tasks "
            "(`tasks.utility`; not binarized, not part of the matrix): the model each cell forgot from "
            "(fine-tuned) and the model after forgetting, the change after - fine-tuned, and the pretrained "
            f"model for reference. Change intervals ({level:.0%}): {PAIRED} (the same docs in both "
            "phases, re-aggregated with lm-eval's aggregation per resample), or, without per-doc samples, "
            f"{STDERR}.", "", *markdown_table(pd.DataFrame(body, columns=headers)).splitlines()]


@register_section("utility", order=60, title="Utility tasks (collateral damage)", render=render_utility)
def utility_section(ctx: StudyContext) -> SectionData | None:
    """Each forget cell's utility tasks before and after forgetting (``tasks.utility``)."""
    if not ctx.config.tasks.utility or "eval_forget" not in ctx.config.stages:
        return None
    from lm_forget.run.utility_steps import utility_cells

    return utility_data(utility_cells(ctx.plan), level=ctx.options.confidence_level,
                        n_bootstrap=ctx.options.n_bootstrap)
