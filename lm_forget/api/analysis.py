"""``lm_forget.analyze``: the analysis of three phases given as folders or as ``simple_evaluate`` dicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from lm_forget.analysis.options import AnalysisOptions

if TYPE_CHECKING:
    from lm_forget.analysis.samples import PhaseSamples
    from lm_forget.api.study_results import StudyResults

#: one phase: an lm-eval ``--output_path`` folder, the dict ``lm_eval.simple_evaluate(..., log_samples=True)``
#: (or :func:`lm_forget.evaluate`) returns, or records read already
Phase = Union[str, Path, Mapping[str, Any], "PhaseSamples"]


def analyze(*, pretrained: Phase, finetuned: Phase | Sequence[Phase], forget: Phase | Sequence[Phase],
            features: str | Path | None = None, matrix: str | Path | None = None, control: str | Path | None = None,
            options: AnalysisOptions | Mapping[str, Any] | None = None,
            out: str | Path | None = None) -> StudyResults:
    """Metrics with intervals, predictor tests and findings of pretrained -> finetuned -> forget, in memory.

    Args:
        pretrained, finetuned, forget: each phase (named as everywhere: folders ``eval_<phase>``, columns
            ``acc_<phase>``, cards) as an lm-eval ``--log_samples`` output folder or as the
            results dict ``simple_evaluate`` returns with ``log_samples=True`` (e.g. :func:`lm_forget.evaluate`).
            ``forget`` may be a list (one per forget seed: the headline tests pool them), ``finetuned`` then
            one phase, or a list aligned with it (each replicate's own fine-tuned model).
        features: a features folder (``lm-forget features``); matrix: cross-task matrix shards' merge folder;
            control: the lm-eval folder of a control cell (see :func:`lm_forget.analysis.api.analyze`).
        options: :class:`~lm_forget.analysis.options.AnalysisOptions` or its fields (``{"n_bootstrap": 500}``).
        out: also write the report folder there (as ``lm-forget analyze --out``).

    Returns:
        a :class:`~lm_forget.api.study_results.StudyResults` (``.metrics``, ``.tests``, ``.findings``,
        ``.to_markdown()``, ``.write(path)``).
    """
    from lm_forget.analysis.api import compute
    from lm_forget.api.study_results import StudyResults

    opts = options if isinstance(options, AnalysisOptions) or options is None else AnalysisOptions(**dict(options))
    read: dict[int, Any] = {}  # one dict given twice is one phase (the same fine-tuned model)

    def phase(value: Any, name: str) -> Any:
        if not isinstance(value, Mapping):
            return value
        if id(value) not in read:
            from lm_forget.analysis.samples import phase_from_results

            read[id(value)] = phase_from_results(dict(value), name)
        return read[id(value)]

    def phases(value: Any, name: str) -> Any:
        if isinstance(value, list | tuple):
            return [phase(v, f"{name} {i}") for i, v in enumerate(value, start=1)]
        return phase(value, name)

    res = compute(pretrained=phase(pretrained, "pretrained"), finetuned=phases(finetuned, "finetuned"),
                  forget=phases(forget, "forget"), features=_path(features), matrix=_path(matrix),
                  control=_path(control), options=opts)
    results = StudyResults.from_analysis(res, features=_path(features), matrix=_path(matrix))
    if out is not None:
        results.write(out)
    return results


def _path(value: str | Path | None) -> Path | None:
    return Path(value) if value is not None else None
