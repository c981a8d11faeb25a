"""The report's protocol section: accuracy on the forget set beside held-out and other-task accuracy.

The abstract's central contrast: a model trained to forget "learns to generate near-random predictions
for individual examples in the 'training' set used for forgetting", while held-out behaviour varies by
task. Per forget cell (task, forget-set size N, seed) this module tabulates, from lm-eval samples files,

- accuracy on exactly the N trained docs, for the pretrained, fine-tuned and forget models,
- accuracy on the held-out split of the same task (same three models),
- the forget model's accuracy on the other evaluated tasks (docs pooled),

each with its Wilson interval (the report's one accuracy interval), and a verdict on the forget set from a test
that can come out either way at its n (:func:`lm_forget.analysis.decide.chance_decision`, at
``AnalysisOptions.margin`` and ``alpha``): ``near chance`` (TOST), ``did not take`` (flagged in the report),
``below chance``, ``inconclusive``, or ``needs >= N docs`` when no outcome of this many docs could be called near
chance.
The table's ``N`` is the number of forget-set docs actually scored (a pool smaller than the configured size
gives fewer; the configured size is the ``size`` column).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_forget.analysis.decide import DID_NOT_TAKE, chance_decision, near_chance_n
from lm_forget.analysis.metrics import accuracy_ci
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.report import ci_of, ci_text, markdown_table
from lm_forget.analysis.sections import SectionData, StudyContext, records, register_section, table_frame
from lm_forget.errors import DataError
from lm_forget.formats import samples_files

PHASES = ("pretrained", "finetuned", "forget")
#: a :func:`scored_accuracy` as table columns ``<name>_acc``, ``<name>_acc_lo``, ``<name>_acc_hi``, ``_k``, ``_n``
#: (every table names an estimate's interval ``<estimate>_lo`` / ``<estimate>_hi``)
BOUND_COLUMNS = {"acc": "acc", "low": "acc_lo", "high": "acc_hi", "k": "k", "n": "n"}


@dataclass
class ProtocolCell:
    """Where one forget cell's lm-eval outputs are.

    Attributes:
        task: the forgotten task.
        n: forget-set size.
        seed: forget seed (``f<fine-tune seed>s<seed>`` on a fine-tune seed axis).
        forget_set: phase -> lm-eval output folder scoring the forget set (``eval_on=train``).
        held_out: phase -> lm-eval output folder scoring the held-out split (the forget phase: the cell's).
        other_tasks: tasks besides ``task`` the forget model was scored on (empty: ``forget_scope: self``).
    """

    task: str
    n: int | None
    seed: int | str
    forget_set: dict[str, Path] = field(default_factory=dict)
    held_out: dict[str, Path] = field(default_factory=dict)
    other_tasks: list[str] = field(default_factory=list)


def doc_correct(folder: Path, task: str) -> dict[str, int]:
    """doc id -> 1/0 (lm-eval's per-doc ``acc``) from ``samples_<task>_*.jsonl`` under ``folder``, read by the one
    reader of lm-eval samples (:mod:`lm_forget.analysis.samples`)."""
    from lm_forget.analysis.samples import read_correct

    files = samples_files(folder, task)
    if not files:
        raise DataError(f"no samples_{task}_*.jsonl under {folder}: delete that step's folder to rerun its "
                        "evaluation (lm-eval must run with --log_samples).")
    return read_correct(files[-1], task)


def scored_accuracy(correct: Sequence[int], confidence: float = 0.95) -> dict[str, float]:
    """Accuracy of per-doc 1/0 scores with the report's one accuracy interval
    (:func:`lm_forget.analysis.metrics.accuracy_ci`, Wilson), k correct and n; NaN when there are no docs."""
    n, k = len(correct), int(sum(correct))
    if n == 0:
        return {"acc": math.nan, "low": math.nan, "high": math.nan, "k": 0, "n": 0}
    acc, low, high = accuracy_ci(k, n, confidence)
    return {"acc": acc, "low": low, "high": high, "k": k, "n": n}


def chance_verdict(ci: dict[str, float], options: AnalysisOptions | None = None) -> str:
    """The forget-set verdict of a :func:`scored_accuracy` (see :func:`lm_forget.analysis.decide.chance_decision`)."""
    opts = options or AnalysisOptions()
    return chance_decision(int(ci["k"]), int(ci["n"]), margin=opts.margin, alpha=opts.alpha).verdict


def scored_text(ci: dict[str, float] | None) -> str:
    """A :func:`scored_accuracy` as the tables show it: ``0.512 [0.470, 0.554] (n=512)``, or why there is none."""
    if ci is None:
        return "not evaluated"
    if ci["n"] == 0:
        return "undefined (no docs)"
    return f"{ci_text(ci['acc'], ci['low'], ci['high'])} (n={ci['n']})"


def cell_rows(cell: ProtocolCell, options: AnalysisOptions | None = None) -> dict[str, Any]:
    """One table row: forget-set / held-out accuracies per phase, other tasks, the verdict and its test.

    ``n`` is the number of forget-set docs the forget model was scored on; ``size`` the configured size."""
    opts = options or AnalysisOptions()
    level = opts.confidence_level
    row: dict[str, Any] = {"task": cell.task, "size": cell.n, "seed": cell.seed}
    cis: dict[str, dict[str, float] | None] = {}
    for phase in PHASES:
        for kind, folders in (("forget_set", cell.forget_set), ("held_out", cell.held_out)):
            folder = folders.get(phase)
            ci = scored_accuracy(list(doc_correct(folder, cell.task).values()), level) if folder else None
            cis[f"{kind}_{phase}"] = ci
    other = None
    if cell.other_tasks and cell.held_out.get("forget"):
        pooled: list[int] = []
        for task in cell.other_tasks:
            pooled += list(doc_correct(cell.held_out["forget"], task).values())
        other = scored_accuracy(pooled, level)
    cis["other_tasks_forget"] = other
    for name, ci in cis.items():
        row[name] = scored_text(ci)
        for stat, column in BOUND_COLUMNS.items():
            row[f"{name}_{column}"] = ci[stat] if ci else math.nan
    forget_ci = cis.get("forget_set_forget")
    row["n"] = forget_ci["n"] if forget_ci else math.nan
    if forget_ci:
        decision = chance_decision(int(forget_ci["k"]), int(forget_ci["n"]), margin=opts.margin, alpha=opts.alpha)
        row |= {"forget_set_verdict": decision.verdict, "forget_set_p": decision.p,
                "forget_set_n_needed": decision.n_needed, "forget_set_test": decision.test}
    else:
        row |= {"forget_set_verdict": "not evaluated", "forget_set_p": math.nan, "forget_set_n_needed": math.nan,
                "forget_set_test": ""}
    return row


def protocol_rows(cells: Sequence[ProtocolCell], options: AnalysisOptions | None = None) -> list[dict[str, Any]]:
    """The forget-set table's rows (one per forget cell)."""
    return [cell_rows(c, options) for c in cells]


def forget_set_data(groups: Sequence[tuple[str | None, list[dict[str, Any]]]], folder: Path, index_dir: Path,
                    options: AnalysisOptions | None = None) -> SectionData | None:
    """The forget-set section's data from its rows: per group (a method id on a ``forget.methods`` axis, else None
    and one group) the table ``[<method>/]forget_set`` and its contrast figure (saved under ``folder[/<method>]``,
    linked relative to ``index_dir``). None without rows."""
    from lm_forget.analysis.contrast_plot import plot_contrast

    level = (options or AnalysisOptions()).confidence_level
    data = SectionData()
    every: list[dict[str, Any]] = []
    for method, rows in groups:
        if not rows:
            continue
        stem = f"{method}/forget_set" if method else "forget_set"
        data.tables[stem] = table_frame(rows)
        figure = plot_contrast(rows, (folder / method if method else folder) / "contrast.png", confidence_level=level)
        data.figures[stem] = figure.relative_to(index_dir).as_posix()
        every += [dict(r, task=f"{method}: {r['task']}") if method else r for r in rows]
    data.findings["protocol"] = every
    return data if data.tables else None


def render_forget_set(data: SectionData, opts: AnalysisOptions) -> list[str]:
    """The forget-set section's text: per table (one per method) the rows shown, the figure and the flags."""
    import pandas as pd

    body = ["The abstract's reading: after random-label forgetting the forget (training) set is near chance "
            f"(0.5), while held-out accuracy varies by task. Accuracy with Wilson {opts.confidence_level:.0%} "
            f"intervals. Forget-set verdict at alpha = {opts.alpha:g}, margin = {opts.margin:g}: near chance = two "
            f"one-sided exact binomial tests (TOST) show the accuracy within 0.5 ± {opts.margin:g}; did not take = "
            f"shown above {0.5 + opts.margin:g}; 'needs >= N docs' = no outcome of this many docs could be called "
            f"near chance (near chance needs >= {near_chance_n(0.5, opts.margin, opts.alpha)} docs). N = forget-set "
            "docs scored; size = the configured forget-set size.", ""]
    for stem, frame in data.tables.items():
        rows = records(frame)
        method = stem.rpartition("/")[0]
        shown = pd.DataFrame([{**{c: r.get(c, math.nan) for c in SHOWN}, "forget_set_verdict": _verdict_p(r)}
                              for r in rows])
        body += [*([f"### {method}", ""] if method else []),
                 *markdown_table(shown[SHOWN].rename(columns=HEADERS)).splitlines(), "",
                 f"![forget set vs held-out vs other tasks, per forget cell and phase]({data.figures[stem]})", "",
                 *_flags(rows, opts)]
    return body


SHOWN = ["task", "n", "size", "seed", "forget_set_forget", "forget_set_verdict", "held_out_forget",
         "other_tasks_forget", "forget_set_finetuned", "held_out_finetuned", "forget_set_pretrained",
         "held_out_pretrained"]
HEADERS = dict(zip(SHOWN, ["task", "N (docs scored)", "size", "seed", "forget set (after forget)", "forget set",
                           "held-out (after forget)", "other tasks (after forget, docs pooled)",
                           "forget set (fine-tuned)", "held-out (fine-tuned)", "forget set (pretrained)",
                           "held-out (pretrained)"], strict=True))


def _verdict_p(row: dict[str, Any]) -> str:
    p = row.get("forget_set_p", math.nan)
    return f"{row['forget_set_verdict']} (p = {p:.3g})" if math.isfinite(p) else row["forget_set_verdict"]


def _flags(rows: Sequence[dict[str, Any]], opts: AnalysisOptions) -> list[str]:
    """One bold line per forget cell whose forgetting did not take."""
    flags = []
    for r in rows:
        if r["forget_set_verdict"] != DID_NOT_TAKE:
            continue
        acc = ci_of(r, "forget_set_forget_acc")
        flags.append(f"- **{r['task']} (N={r.get('n', math.nan)}, seed {r['seed']}): forgetting did not take: "
                     f"forget-set accuracy {acc} ({opts.confidence_level:.0%} CI; above {0.5 + opts.margin:g}: "
                     f"p = {r.get('forget_set_p', math.nan):.3g}).** Its forget ratio describes a forget pass that "
                     "did not reach the trained docs.")
    return flags


@register_section("forget_set", order=10, folder="protocol", title="Forget set vs held-out", render=render_forget_set)
def forget_set_section(ctx: StudyContext) -> SectionData | None:
    """Every forget cell's forget set beside its held-out split and the other tasks (one table per method)."""
    from lm_forget.run.forget_set_steps import method_protocol_cells

    cells = method_protocol_cells(ctx.plan)
    methods = [m.id for m in ctx.config.forget.method_specs] or [None]
    groups = [(m, protocol_rows([c for cm, c in cells if cm == m], ctx.options)) for m in methods]
    return forget_set_data(groups, ctx.folder("protocol"), ctx.out, ctx.options)


def render_dynamics(data: SectionData, opts: AnalysisOptions) -> list[str]:
    """The dynamics section's text: per (size, seed) label its order statistics and figure."""
    from lm_forget.analysis.dynamics import DynamicsOptions

    options = DynamicsOptions()
    body = [f"Learned at: first fine-tuning step from which P(gold vs distractor) stays >= {options.threshold:g}; "
            "forgotten at: first forgetting step from which it stays below. Spearman rank correlation per task "
            f"(bootstrap {opts.confidence_level:.0%} CI); tasks with fewer than {options.min_docs} "
            "qualifying docs are reported but not pooled. (The order analysis and the 0.6 threshold follow a "
            "secondary reading of the paper.)", ""]
    for stem, stats in data.tables.items():
        if stem.endswith("/order_stats"):
            folder = stem.removesuffix("/order_stats")
            body += [f"### {folder.removeprefix('dynamics-')}", "", stats.to_markdown(index=False, floatfmt=".3f"),
                     "", f"![learned vs forgotten]({data.figures[folder]})", ""]
    return body


@register_section("dynamics", order=20, folder="protocol", title="Learning order vs forgetting order",
                  render=render_dynamics)
def dynamics_section(ctx: StudyContext) -> SectionData | None:
    """Learning vs forgetting order per (size, seed), from the fine-tune and forget steps' dynamics files."""
    import pandas as pd

    from lm_forget.analysis.dynamics import DynamicsOptions, doc_orders, order_stats, plot_orders
    from lm_forget.run.forget_set_steps import dynamics_inputs

    inputs = dynamics_inputs(ctx.plan)
    if not inputs:
        return None
    options = DynamicsOptions(confidence_level=ctx.options.confidence_level, n_bootstrap=ctx.options.n_bootstrap,
                              seed=ctx.options.seed)
    data = SectionData(findings={"orders": []})
    for label, (finetune, cells) in inputs.items():
        forget = pd.concat([pd.read_parquet(p) for p in cells], ignore_index=True)
        learn = pd.read_parquet(finetune)
        orders = doc_orders(pd.concat([learn[learn["doc_id"].isin(set(forget["doc_id"]))], forget],
                                      ignore_index=True), options.threshold)
        stats = order_stats(orders, options)
        data.tables |= {f"dynamics-{label}/orders": orders, f"dynamics-{label}/order_stats": stats}
        data.findings["orders"].append((label, stats))
        figure = plot_orders(orders, ctx.folder("protocol", f"dynamics-{label}") / "orders.png")
        data.figures[f"dynamics-{label}"] = ctx.figure_path(figure)
    return data
