"""The analysis API the study runner calls: features, compute / analyze, merge_matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.results import AnalysisResults
from lm_forget.data.config import DataConfig
from lm_forget.errors import ConfigError
from lm_forget.modeling import ModelRef

__all__ = ["AnalysisOptions", "AnalysisResults", "analyze", "compute", "extract_features", "findings", "merge_matrix"]


def extract_features(model: ModelRef | str, *, tasks: list[str], out: Path, peft: str | None = None,
                     data: DataConfig | None = None, layer: int | str | list[int] = -5, split: str = "test",
                     batch_size: int = 16, task_dirs: Sequence[str | Path] = (), device: str | None = None,
                     role: str | None = None, limit: int | None = None, probes: bool = False,
                     probe_layers: int | str | list[int] = "all", padding_side: str = "right",
                     dtype: str | None = None) -> Path:
    """Hidden-state variance (and optional probe) features of ``model`` on ``tasks``.

    ``model``: a ``ModelRef`` (base, revision, tokenizer, dtype, adapter), or a base id/folder with the
    adapter in ``peft``. ``data``: the ``DataConfig`` the docs are sampled with (default: the defaults).
    Writes ``out/features.json`` (and ``out/probes.csv`` with ``probes=True``); returns ``out``.
    ``layer``: index into hidden_states (0 = embeddings, -5 = fifth-from-last), a list, or "all".
    ``role`` names the model in the report (default: the adapter's or model's folder name).
    """
    from lm_forget.analysis.features import FeatureConfig, run_features

    if isinstance(model, ModelRef):
        if peft:
            raise ConfigError("extract_features: the adapter goes in the ModelRef (ref.with_adapter(...)), not peft=")
        ref = model
    else:
        ref = ModelRef(str(model), adapter=str(peft) if peft else None)
    cfg = FeatureConfig(model=ref, tasks=list(tasks), data=data or DataConfig(), layer=layer, split=split,
                        role=role, batch_size=batch_size, padding_side=padding_side, device=device, dtype=dtype,
                        task_dirs=tuple(str(p) for p in task_dirs), limit=limit, probes=probes,
                        probe_layers=probe_layers)
    run_features(cfg, Path(out))
    return Path(out)


def compute(*, pretrained: Path, finetuned: Path | Sequence[Path], forget: Path | Sequence[Path],
            features: Path | None = None,
            matrix: Path | None = None, control: Path | None = None,
            options: AnalysisOptions | None = None) -> AnalysisResults:
    """The numbers of :func:`analyze` (metrics, tests, matrix, control) as an :class:`AnalysisResults`;
    nothing is written. A phase may also be its records read already (``samples.phase_from_results``)."""
    from lm_forget.analysis.results import compute_results

    forget = forget if isinstance(forget, str | Path) or not isinstance(forget, Sequence) else list(forget)
    finetuned = finetuned if isinstance(finetuned, str | Path) or not isinstance(finetuned, Sequence) \
        else list(finetuned)
    return compute_results(pretrained=pretrained, finetuned=finetuned, forget=forget,
                           features=Path(features) if features else None, matrix=Path(matrix) if matrix else None,
                           control=Path(control) if control else None, options=options)


def analyze(*, pretrained: Path, finetuned: Path | Sequence[Path], forget: Path | Sequence[Path], out: Path,
            features: Path | None = None, matrix: Path | None = None, control: Path | None = None,
            options: AnalysisOptions | None = None) -> Path:
    """Metrics, predictor tests, matrix, probes, figures and report from lm-eval ``--output_path`` folders.

    ``control``: lm-eval folder of a control forget cell (no targeted forgetting, e.g. continued training on
    gold labels) on the same docs: the baseline of the example-level associations.
    ``forget``: one folder, or a list (one per forget seed): the headline tests then pool the seeds.
    ``finetuned``: one folder, or a list aligned with ``forget`` (fine-tune seeds: each replicate's own
    fine-tuned model; the hierarchical bootstrap then resamples fine-tune seeds, then forget seeds).

    Returns the report folder ``out`` (``index.md``, ``index.html``, tables, ``figures/``): :func:`compute`,
    then :func:`lm_forget.analysis.render.render`, then :func:`lm_forget.analysis.writer.write_report`, which
    builds the folder beside ``out`` and renames it into place: an interrupted or failed run leaves the
    previous report (or nothing), never half of one.
    """
    from lm_forget.analysis.render import render
    from lm_forget.analysis.writer import check_out, write_report

    out = check_out(Path(out))
    res = compute(pretrained=pretrained, finetuned=finetuned, forget=forget, features=features, matrix=matrix,
                  control=control, options=options)
    return write_report(render(res, features=Path(features) if features else None,
                               matrix=Path(matrix) if matrix else None), out)


def merge_matrix(shard_dirs: Sequence[str | Path], out: Path) -> Path:
    """Merge cross-task matrix shards into ``out/matrix.csv`` (readable by ``analyze(matrix=out)``)."""
    from lm_forget.analysis.matrix import merge_matrix as _merge

    return _merge([Path(d) for d in shard_dirs], Path(out))


def findings(report: Path | str):
    """The :class:`~lm_forget.analysis.findings.Findings` of a report folder (a per-size report, or a study's
    ``analyze`` output), read from its ``findings.json`` — the one source of the report's words."""
    from lm_forget.analysis.findings import Findings

    return Findings.read(Path(report))
