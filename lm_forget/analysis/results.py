"""The compute half of ``analyze``: phases -> joined docs -> metrics -> predictors -> tests -> matrix ->
control, into one :class:`AnalysisResults` (no files, no figures; ``render`` renders it, ``writer`` writes it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from lm_forget.analysis import stats
from lm_forget.analysis.join import join_phases
from lm_forget.analysis.metrics import task_metrics
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.registry import Context, PredictorValues, compute
from lm_forget.analysis.verdicts import settings_of, task_level_tests
from lm_forget.errors import DataError

if TYPE_CHECKING:
    from lm_forget.analysis.samples import PhaseSamples

#: one phase: an lm-eval ``--output_path`` folder, or its records read already (e.g. from a results dict)
PhaseSource = Union[Path, "PhaseSamples"]

log = logging.getLogger(__name__)


@dataclass
class AnalysisResults:
    """Everything the report shows, as tables (pandas) and dicts."""

    options: AnalysisOptions
    phases: dict[str, Any]
    joined: Any
    metrics_all: Any
    metrics: Any
    values: list[PredictorValues]
    tests: Any
    example_tests: Any
    feature_sets: list[dict] = field(default_factory=list)
    matrix_long: Any = None
    matrix_ratios: Any = None
    matrix_decomposition: dict | None = None
    control: Path | None = None
    control_deciles: Any = None
    control_excess: Any = None
    outcome: dict[str, float] = field(default_factory=dict)  # the headline outcome per task (seed mean if pooled)
    n_seeds: int = 1


def example_level_tests(values, joined, opts: AnalysisOptions):
    """Within each task: forgotten (of the docs the fine-tuned model got right) vs per-doc predictors.

    One hypothesis per (predictor, task); its primary test is the AUC (Mann-Whitney U), the point-biserial r
    a sensitivity row; Holm / BH run over the primary rows."""
    import pandas as pd

    scope = joined[(joined["split"] == opts.split) & joined["correct_finetuned"]]
    rows = []
    for pv in values:
        if pv.level != "example":
            continue
        for task, g in scope.groupby("task", sort=True):
            for r in stats.binary_association(g["forgotten"], pv.values.loc[g.index], settings_of(opts),
                                              min_per_group=opts.example_min_forgotten):
                rows.append({"predictor": pv.name, "task": task} | r)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["role"] = ["primary" if m == "auc" else "sensitivity" for m in table["method"]]
    primary = table["role"] == "primary"
    table["p_holm"] = float("nan")
    table["p_bh"] = float("nan")
    table.loc[primary, "p_holm"] = stats.holm(table.loc[primary, "p"].to_numpy())
    table.loc[primary, "p_bh"] = stats.benjamini_hochberg(table.loc[primary, "p"].to_numpy())
    return table


def _matrix(results: AnalysisResults, matrix: Path) -> None:
    from lm_forget.analysis import matrix as mx

    metrics, opts = results.metrics, results.options
    ft_acc = dict(zip(metrics["task"], metrics["acc_finetuned"], strict=True))
    ft_n = dict(zip(metrics["task"], metrics["n"], strict=True))
    results.matrix_ratios, results.matrix_long = mx.ratio_matrix(
        mx.read_matrix_dir(matrix, split=opts.split), ft_acc, finetuned_n=ft_n, opts=opts)
    results.matrix_decomposition = mx.decompose(results.matrix_long)


def _control(results: AnalysisResults, control: Path) -> None:
    from lm_forget.analysis.control import excess_association, flip_by_decile, join_control

    opts = results.options
    joined = join_control(results.joined, control)
    scope = joined[(joined["split"] == opts.split) & joined["correct_finetuned"] & joined["has_control"]]
    results.control = control
    results.control_deciles = flip_by_decile(scope, opts)
    import pandas as pd

    parts = [excess_association(scope, pv.values, opts, name=pv.name) for pv in results.values
             if pv.level == "example"]
    results.control_excess = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["predictor", "task", "excess", "excess_lo", "excess_hi"])


def load_phase(source: PhaseSource) -> PhaseSamples:
    """A phase's records: ``source`` as read already (:class:`PhaseSamples`), else read from its folder."""
    from lm_forget.analysis.samples import PhaseSamples, read_phase

    return source if isinstance(source, PhaseSamples) else read_phase(source)


def _where(source: PhaseSource) -> Path:
    from lm_forget.analysis.samples import PhaseSamples

    return source.root if isinstance(source, PhaseSamples) else Path(source)


def _source(f: Any) -> PhaseSource:
    return Path(f) if isinstance(f, str | Path) else f


def replicate_labels(sources: list[PhaseSource]) -> list[str]:
    """A readable label per replicate folder: its name, else its parent's where names repeat (the study runner's
    ``<label>/forget``), else parent/name. Phases read already are named by their ``root``."""
    folders = [_where(s) for s in sources]
    for names in ([f.name for f in folders], [f.parent.name for f in folders]):
        if len(set(names)) == len(names):
            return names
    return [f"{f.parent.name}/{f.name}" for f in folders]


def _pooled(results: AnalysisResults, first_draws: dict, forgets: list[PhaseSource],
            finetuned: list[PhaseSource]) -> None:
    """Several replicates (forget seeds, and fine-tune seeds where ``finetuned`` differs between them): headline
    tests on replicate-averaged outcomes with a hierarchical bootstrap CI (tasks, fine-tune seeds, forget seeds,
    docs); per-replicate primary tests as sensitivity rows; metrics of every replicate in ``metrics_all``
    (column ``seed``)."""
    import numpy as np
    import pandas as pd

    from lm_forget.analysis.pooled import hierarchical_spearman_ci, pooled_outcomes
    from lm_forget.analysis.verdicts import PRIMARY, equivalence

    opts, phases = results.options, results.phases
    labels = replicate_labels(forgets)
    ids = [f if isinstance(f, Path) else id(f) for f in finetuned]  # records read already: the same object
    ft_folders = list(dict.fromkeys(ids))
    groups = [ft_folders.index(f) for f in ids]  # each replicate's fine-tune seed
    per_seed, draws, alls = [results.metrics], [first_draws], [results.metrics_all.assign(seed=labels[0])]
    for folder, ft, ft_id, label in zip(forgets[1:], finetuned[1:], ids[1:], labels[1:], strict=True):
        swap = {"forget": load_phase(folder)} | ({"finetuned": load_phase(ft)} if ft_id != ids[0] else {})
        joined = join_phases(phases | swap)
        m_all, d = task_metrics(joined, opts, keep_draws=True)
        alls.append(m_all.assign(seed=label))
        per_seed.append(m_all[m_all["split"] == opts.split].reset_index(drop=True))
        draws.append(d)
    mean, cube = pooled_outcomes(per_seed, draws, opts)
    kind = "seeds" if len(ft_folders) == 1 else f"replicates: {len(ft_folders)} fine-tune x " \
        f"{len(forgets) // len(ft_folders)} forget seeds"
    name = f"{opts.outcome} (mean of {len(forgets)} {kind})"
    tests = task_level_tests(results.values, mean, opts, outcome_name=name)
    tasks = list(mean)
    for i, row in tests.iterrows():
        if row["role"] != "primary" or not np.isfinite(row["statistic"]):
            continue
        pv = next(v for v in results.values if v.name == row["predictor"] and v.level == "task")
        x = np.array([pv.values.get(t, np.nan) for t in tasks], dtype=float)
        keep = np.isfinite(x)
        lo, hi = hierarchical_spearman_ci(x[keep], cube[keep], opts, groups)
        how = "tasks, seeds, docs" if len(ft_folders) == 1 else "tasks, fine-tune seeds, forget seeds, docs"
        tests.loc[i, ["ci_low", "ci_high", "ci_method"]] = [lo, hi, f"hierarchical ({how})"]
        tests.loc[i, "equivalence"] = equivalence(tests.loc[i], opts)
    sens = []
    for label, m in zip(labels, per_seed, strict=True):
        t = task_level_tests(results.values, dict(zip(m["task"], m[opts.outcome], strict=True)), opts)
        t = t[t["method"] == PRIMARY].assign(role=f"sensitivity (seed {label})", p_holm=np.nan,
                                             p_bh=np.nan, equivalence="")
        sens.append(t)
    results.tests = pd.concat([tests, *sens], ignore_index=True)
    results.metrics_all = pd.concat(alls, ignore_index=True)
    results.outcome, results.n_seeds = mean, len(forgets)


def compute_results(*, pretrained: PhaseSource, finetuned: PhaseSource | list[PhaseSource],
                    forget: PhaseSource | list[PhaseSource],
                    features: Path | None = None, matrix: Path | None = None, control: Path | None = None,
                    options: AnalysisOptions | None = None) -> AnalysisResults:
    """Read the phases and compute every table of the report. ``forget``: one folder, or one per replicate
    (the headline tests then pool them; the example level, predictors and matrix use the first). ``finetuned``:
    one folder, or one per replicate (fine-tune seeds: each replicate's own fine-tuned model). A phase may also be
    its records read already (:class:`~lm_forget.analysis.samples.PhaseSamples`, e.g. from a results dict)."""
    from lm_forget.analysis.features import read_feature_sets
    from lm_forget.analysis.probes import probe_intervals

    opts = options or AnalysisOptions()
    source = _source
    forgets = [source(f) for f in (forget if isinstance(forget, list | tuple) else [forget])]
    finetuneds = ([source(f) for f in finetuned] if isinstance(finetuned, list | tuple)
                  else [source(finetuned)] * len(forgets))
    if len(finetuneds) != len(forgets):
        raise DataError(f"{len(finetuneds)} fine-tuned folders for {len(forgets)} forget folders; give one "
                        "fine-tuned folder, or one per forget folder (each replicate's own fine-tuned model).")
    folders = {"pretrained": source(pretrained) if pretrained is not None else None, "finetuned": finetuneds[0],
               "forget": forgets[0]}
    for name, folder in folders.items():
        if folder is None:
            raise DataError(f"missing phase {name}: pass --{name} DIR (an lm_eval --log_samples output folder)")
    phases = {name: load_phase(folder) for name, folder in folders.items()}
    joined = join_phases(phases)
    metrics_all, first_draws = task_metrics(joined, opts, keep_draws=True)
    metrics = metrics_all[metrics_all["split"] == opts.split].reset_index(drop=True)
    if metrics.empty:
        raise DataError(f"no docs of split {opts.split!r} in the samples (splits present: "
                        f"{', '.join(sorted(metrics_all['split'].unique()))}); pass --split accordingly")
    feature_sets = read_feature_sets(features) if features else []
    for fs in feature_sets:  # probe accuracies' intervals at this analysis's confidence_level
        fs["probes"] = [probe_intervals(p, opts.confidence_level) for p in fs.get("probes", [])]
    ctx = Context(joined=joined, metrics=metrics, options=opts, feature_sets=feature_sets)
    values = compute(ctx, list(opts.predictors) or None)
    for pv in values:  # tasks the predictor lacks become NaN (dropped pairwise by the tests)
        if pv.level == "task":
            missing = sorted(set(metrics["task"]) - set(pv.values))
            if missing:
                log.warning("%s has no value for %s", pv.name, ", ".join(missing))
    outcome = dict(zip(metrics["task"], metrics[opts.outcome], strict=True))
    results = AnalysisResults(options=opts, phases=phases, joined=joined, metrics_all=metrics_all, metrics=metrics,
                              values=values, tests=task_level_tests(values, outcome, opts),
                              example_tests=example_level_tests(values, joined, opts), feature_sets=feature_sets,
                              outcome=outcome)
    if len(forgets) > 1:
        _pooled(results, first_draws, forgets, finetuneds)
    if matrix:
        _matrix(results, matrix)
    if control:
        _control(results, control)
    return results
