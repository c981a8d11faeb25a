"""The report's method sections: per forgetting method and forget cell, what was forgotten and what else went;
and what predicts forgetting, compared across methods.

For a study with ``forget.methods`` (cells: method x task x size x seed), each row is one cell, from the same
lm-eval samples files the protocol section reads (``protocol_report``):

- forget set: the forget model's accuracy on exactly the N docs it was trained to forget,
- held-out: its accuracy on the held-out split of the same task (does forgetting generalize?),
- other tasks: its accuracy on the other evaluated tasks, docs pooled (collateral damage),

each an accuracy with its Wilson interval (at ``confidence_level``) from the counts, beside the fine-tuned model's
accuracy on the same docs. Rows are cells, not seed averages: docs are the unit of the intervals, and seeds
stay separate rather than being pooled as if they were more docs. A missing evaluation says so.

The predictor comparison puts each method's *primary* task-level rows (variance, confidence, difficulty) side by
side: per method, forget-set size, predictor and outcome, the Spearman correlation with its interval, the
multiplicity-corrected p, the power at this n, and the verdict word the method's report uses
(:func:`lm_forget.analysis.verdicts.verdict`), from each method's headline analysis in memory (pooled over
replicates where there is one): it compares exactly what the method reports say; no statistic is recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.protocol_report import BOUND_COLUMNS, ProtocolCell, doc_correct, scored_accuracy, scored_text
from lm_forget.analysis.report import ci_text, markdown_table
from lm_forget.analysis.sections import SectionData, StudyContext, records, register_section, table_frame

#: (column prefix, header, what it measures) of the three comparisons, in panel order
MEASURES = (("forget_set", "forget set", "the trained (forgotten) docs"),
            ("held_out", "held-out", "held-out docs of the same task"),
            ("other_tasks", "other tasks", "the other evaluated tasks, docs pooled"))


def _ci(folder: Path | None, tasks: Sequence[str], level: float) -> dict[str, float] | None:
    if folder is None or not tasks:
        return None
    pooled: list[int] = []
    for task in tasks:
        pooled += list(doc_correct(folder, task).values())
    return scored_accuracy(pooled, level)


def method_rows(cells: Sequence[tuple[str | None, ProtocolCell]], level: float = 0.95) -> list[dict[str, Any]]:
    """One row per (method, cell): forget-set, held-out and other-task accuracy after forgetting (and fine-tuned),
    each with its Wilson interval at ``level``."""
    rows = []
    for method, cell in cells:
        row: dict[str, Any] = {"method": method or "default", "task": cell.task, "n": math.nan, "size": cell.n,
                               "seed": cell.seed}
        for phase in ("forget", "finetuned"):
            cis = {"forget_set": _ci(cell.forget_set.get(phase), [cell.task], level),
                   "held_out": _ci(cell.held_out.get(phase), [cell.task], level),
                   "other_tasks": _ci(cell.held_out.get(phase), cell.other_tasks, level)}
            for name, ci in cis.items():
                col = f"{name}_{phase}"
                row[col] = scored_text(ci)
                for stat in ("acc", "low", "high", "n"):
                    row[f"{col}_{BOUND_COLUMNS[stat]}"] = ci[stat] if ci else math.nan
        row["n"] = row["forget_set_forget_n"]  # N = forget-set docs actually scored (size: the configured one)
        rows.append(row)
    return rows


def plot_methods(rows: Sequence[dict[str, Any]], path: Path, level: float = 0.95) -> Path:
    """One panel per method: forget set / held-out / other tasks after forgetting, per cell, with CI bars (the
    rows' intervals, at ``level``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, len(methods), figsize=(max(4.0, 3.2 * len(methods)), 3.6), sharey=True,
                             squeeze=False)
    width = 0.8 / len(MEASURES)
    for ax, method in zip(axes[0], methods, strict=True):
        mine = [r for r in rows if r["method"] == method]
        for j, (name, header, _) in enumerate(MEASURES):
            xs, ys, errs = [], [], [[], []]
            for i, r in enumerate(mine):
                acc = r[f"{name}_forget_acc"]
                if math.isnan(acc):
                    continue  # not evaluated or undefined: no bar (the table says which)
                xs.append(i + (j - 1) * width)
                ys.append(acc)
                errs[0].append(acc - r[f"{name}_forget_acc_lo"])
                errs[1].append(r[f"{name}_forget_acc_hi"] - acc)
            ax.bar(xs, ys, width, yerr=errs, capsize=2, label=header)
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xticks(range(len(mine)))
        ax.set_xticklabels([f"{r['task'].removeprefix('forget_').removeprefix('demo_')}\nN={r['n']} s{r['seed']}"
                            for r in mine], fontsize=7)
        ax.set_title(method)
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel(f"accuracy after forgetting ({level:.0%} CI)")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def methods_data(cells: Sequence[tuple[str | None, ProtocolCell]], folder: Path, index_dir: Path,
                 level: float = 0.95) -> SectionData | None:
    """The comparison of ``cells`` (table ``methods``, figure ``methods.png`` under ``folder``, linked relative to
    ``index_dir``); None without cells."""
    rows = method_rows(cells, level)
    if not rows:
        return None
    figure = plot_methods(rows, folder / "methods.png", level)
    return SectionData({"methods": table_frame(rows)}, {"methods": figure.relative_to(index_dir).as_posix()})


def render_methods(data: SectionData, opts: AnalysisOptions) -> list[str]:
    """The comparison's text from its ``methods`` table."""
    import pandas as pd

    shown = ["method", "task", "n", "size", "seed", "forget_set_forget", "held_out_forget", "other_tasks_forget",
             "forget_set_finetuned", "held_out_finetuned", "other_tasks_finetuned"]
    headers = ["method", "forgotten task", "N (docs scored)", "size", "seed", "forget set", "held-out", "other tasks",
               "forget set (fine-tuned)", "held-out (fine-tuned)", "other tasks (fine-tuned)"]
    frame = pd.DataFrame([{h: r.get(c, math.nan) for c, h in zip(shown, headers, strict=True)}
                          for r in records(data.tables["methods"])])
    return ["Per method and forget cell, accuracy after forgetting on " + "; ".join(
                f"**{h}**: {what}" for _, h, what in MEASURES) + f". Wilson {opts.confidence_level:.0%} intervals "
            "from the doc counts; chance is 0.5. The fine-tuned columns are the same docs before forgetting.", "",
            *markdown_table(frame).splitlines(), "", f"![forgetting methods]({data.figures['methods']})"]


@register_section("methods", order=30, title="Forgetting methods compared", render=render_methods)
def methods_section(ctx: StudyContext) -> SectionData | None:
    """Every forgetting method's cells side by side (a study with ``forget.methods``)."""
    if not ctx.config.forget.methods:
        return None
    from lm_forget.run.forget_set_steps import method_protocol_cells

    return methods_data(method_protocol_cells(ctx.plan), ctx.folder("methods"), ctx.out,
                        ctx.options.confidence_level)


def predictor_rows(tests: Mapping[tuple[str | None, int | None], Any], opts: AnalysisOptions) -> list[dict[str, Any]]:
    """One row per (method, size, predictor, outcome): the primary task-level test of that method's headline
    analysis (``tests``: (method id, forget-set size) -> its task-level tests table, None or empty when it has
    none). Nothing is recomputed: the rows are the method reports' own numbers."""
    from lm_forget.analysis.verdicts import verdict

    rows: list[dict[str, Any]] = []
    for (method, n), table in tests.items():
        if table is None or not len(table):  # e.g. too few tasks: say so in the table
            rows.append({"method": method, "n": n, "predictor": "", "outcome": "", "n_tasks": 0,
                         "note": "no task-level tests in this method's report"})
            continue
        for _, row in table[table["role"] == "primary"].iterrows():
            row = row.copy()
            row["equivalence"] = row["equivalence"] if isinstance(row["equivalence"], str) else ""
            rows.append({"method": method, "n": n, "predictor": row["predictor"], "outcome": row["outcome"],
                         "n_tasks": int(row["n"]), "rho": float(row["statistic"]), "ci_low": float(row["ci_low"]),
                         "ci_high": float(row["ci_high"]),
                         "p_corrected": float(row["p_holm" if opts.correction == "holm" else "p_bh"]),
                         "power": float(row["power"]), "verdict": verdict(row, opts),
                         "equivalence": row["equivalence"], "note": ""})
    return rows


def predictors_data(tests: Mapping[tuple[str | None, int | None], Any], opts: AnalysisOptions
                    ) -> SectionData | None:
    """The cross-method predictor table (``predictors_by_method``); None without methods."""
    rows = predictor_rows(tests, opts)
    return SectionData({"predictors_by_method": table_frame(rows)}) if rows else None


def render_predictors(data: SectionData, opts: AnalysisOptions) -> list[str]:
    """The cross-method predictor table's text."""
    import pandas as pd

    body = [[str(r["method"]), str(r["n"]), r["note"], "", "", "", "", "", ""] if r.get("note") else
            [str(r["method"]), str(r["n"]), r["predictor"], r["outcome"], str(r["n_tasks"]),
             ci_text(r.get("rho"), r.get("ci_low"), r.get("ci_high"), 2), r.get("p_corrected", math.nan),
             r.get("power", math.nan), r["verdict"]]
            for r in records(data.tables["predictors_by_method"])]
    headers = ["method", "forget-set size", "predictor", "outcome", "tasks", "rho [CI]", "p (corrected)", "power",
               "verdict"]
    return ["The primary (Spearman) task-level test of each method's own report, side by side: rho with its "
            f"{opts.confidence_level:.0%} interval, the p corrected over hypotheses, the power to detect "
            "rho = 0.5 at this n, and the report's verdict. A method's row can only be compared with another's "
            "where both are tested at a useful n.", "",
            *markdown_table(pd.DataFrame(body, columns=headers)).splitlines()]


@register_section("predictors_by_method", order=40, folder="methods", title="What predicts forgetting, by method",
                  render=render_predictors)
def predictors_section(ctx: StudyContext) -> SectionData | None:
    """Each method's headline predictor tests side by side (a study with ``forget.methods``)."""
    if not ctx.config.forget.methods:
        return None
    return predictors_data({key: res.tests for key, res in ctx.headline.items()}, ctx.options)
