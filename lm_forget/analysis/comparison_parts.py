"""The per-size report's parts that set the forget cell beside other cells: the cross-task forgetting matrix
(``--matrix``: every trained task x evaluated task) and the control cell (``--control``: no targeted forgetting),
the baseline of the example-level associations. Each adds its lines to the Summary."""

from __future__ import annotations

import json

from lm_forget.analysis import plots
from lm_forget.analysis.control import NO_BASELINE
from lm_forget.analysis.parts import PartContext, register_part
from lm_forget.analysis.report import fmt


@register_part("matrix", order=50)
def cross_task_matrix(ctx: PartContext) -> list[str]:
    """The matrix's files (long table, ordered forget-ratio matrix, variance decomposition), its UPGMA-ordered
    heatmap and table; the Summary's lines are the decomposition's. Nothing without a matrix input."""
    if not ctx.matrix:
        return []
    from lm_forget.analysis import matrix as mx

    res, r = ctx.res, ctx.rendered
    ratios, long, dec = res.matrix_ratios, res.matrix_long, res.matrix_decomposition
    row_order, col_order, row_link, col_link = mx.upgma_order(ratios)
    report = r.report
    r.files["matrix_long.csv"] = long.to_csv(index=False)
    r.files["matrix_forget_ratio.csv"] = ratios.loc[row_order, col_order].to_csv()
    summary = dec["forget_ratio"] | {k: v for k, v in dec.items() if k != "forget_ratio"}  # ratio shares on top
    r.files["matrix_summary.json"] = json.dumps(summary, indent=2)
    report.heading("Cross-task forgetting matrix")
    fig = plots.matrix_heatmap(ratios, row_order, col_order, row_link=row_link, col_link=col_link)
    r.figure("figures/matrix_heatmap", fig, "Forget ratio of the evaluated task (columns) after forgetting the row "
                                            "task; rows and columns ordered by UPGMA; per-cell CIs in the table below")
    report.table(long.assign(forget_ratio_ci=[f"[{fmt(a)}, {fmt(b)}]" for a, b in
                                              zip(long["forget_ratio_lo"], long["forget_ratio_hi"], strict=True)],
                             forget_drop_ci=[f"[{fmt(a)}, {fmt(b)}]" for a, b in
                                             zip(long["forget_drop_lo"], long["forget_drop_hi"], strict=True)])
                 [["trained_task", "eval_task", "n", "acc_finetuned", "acc_forget", "forget_drop", "forget_drop_ci",
                   "forget_ratio", "forget_ratio_ci", "ratio_note"]])
    lines = mx.decomposition_lines(dec)
    report.bullets(lines)
    return lines


@register_part("control", order=60)
def control_cell(ctx: PartContext) -> list[str]:
    """Flip rates by confidence decile and the example-level AUCs under forgetting vs under the control cell;
    the Summary's lines are the excess verdicts, or, without a control, that the associations have no baseline."""
    res, r = ctx.res, ctx.rendered
    if not res.control:
        return [NO_BASELINE]
    from lm_forget.analysis.control import control_lines

    report = r.report
    r.tables["control_flip_by_decile"] = res.control_deciles
    r.tables["control_excess"] = res.control_excess
    report.heading("Example level against a control cell (no targeted forgetting)")
    report.para(f"Control: {res.control}. Flip rate = share of fine-tuned-correct docs wrong after the forget "
                "pass (forget) or after the control pass (control), by decile of the fine-tuned confidence "
                f"(Wilson {int(res.options.confidence_level * 100)}% CIs).")
    report.table(res.control_deciles)
    report.para("AUC of each example-level predictor for 'forgotten', under forgetting and under the control, and "
                "the excess (difference; paired bootstrap over docs).")
    report.table(res.control_excess)
    lines = control_lines(res.control_excess, res.options)
    report.bullets(lines)
    return lines
