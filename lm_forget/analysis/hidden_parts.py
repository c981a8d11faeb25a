"""The per-size report's parts on the models' hidden states (``--features``): the variance features at each
extracted layer, and the linear probes (is forgetting shallow?). Neither adds a Summary line."""

from __future__ import annotations

import math
from typing import Any

from lm_forget.analysis import plots
from lm_forget.analysis.parts import PartContext, register_part


@register_part("features", order=40)
def variance_features(ctx: PartContext) -> list[str]:
    """The hidden-state variance of every feature set, task and layer (the table), its primary layer shown."""
    feature_sets = ctx.res.feature_sets
    if not feature_sets:
        return []
    import pandas as pd

    feats = pd.DataFrame([{"role": fs["role"], "task": task, "split": fs["split"], "layer": int(layer),
                           "primary": int(layer) == int(fs["primary_layer"]), "n_docs": v["n_docs"],
                           "variance": value}
                          for fs in feature_sets for task, v in fs["tasks"].items()
                          for layer, value in v["variance"].items()])
    ctx.rendered.tables["features"] = feats
    report = ctx.report
    report.heading("Hidden-state variance features")
    report.para("Trace of the covariance across docs of the hidden state at the prompt's last token "
                "(hidden_states index; 0 = embeddings). The primary layer feeds the variance predictor.")
    report.table(feats[feats["primary"]].drop(columns="primary"))
    return []


def _model_accuracy(metrics: Any, role: str, task: str) -> float:
    """The model's own accuracy beside a probe: phase roles, and ``forget-<task>`` on its own task."""
    phase = "forget" if role == f"forget-{task}" else role
    row = metrics[metrics["task"] == task]
    col = f"acc_{phase}"
    return float(row[col].iloc[0]) if col in row and len(row) else math.nan


@register_part("probes", order=70)
def probes(ctx: PartContext) -> list[str]:
    """The linear probes of every feature set (table and accuracy by layer beside the model's own accuracy)."""
    rows = [dict(p, role=fs["role"]) for fs in ctx.res.feature_sets for p in fs.get("probes", [])]
    if not rows:
        return []
    import pandas as pd

    metrics, r = ctx.res.metrics, ctx.rendered
    probe_table = pd.DataFrame(rows)
    probe_table["model_acc"] = [_model_accuracy(metrics, role, task)
                                for role, task in zip(probe_table["role"], probe_table["task"], strict=True)]
    model_acc = {role: float(g["model_acc"].mean()) for role, g in probe_table.groupby("role")}
    r.tables["probes"] = probe_table
    report = r.report
    report.heading("Linear probes (is forgetting shallow?)")
    report.para("L2 logistic probes with early stopping on the last-token hidden state of (question, answer) "
                "pairs, trained on the forget-pool docs and tested on the held-out docs; probe_doc_acc picks "
                "the answer the probe scores higher (chance 0.5), comparable to model accuracy.")
    report.table(probe_table[[c for c in ("role", "task", "layer", "probe_doc_acc", "probe_pair_acc",
                                          "model_acc", "n_train_pairs", "n_test_pairs") if c in probe_table]])
    r.figure("figures/probe_by_layer", plots.probe_by_layer(probe_table, model_acc),
             "Probe accuracy by layer (mean over tasks); dotted: the model's own accuracy")
    return []
