"""``AnalysisOptions``: every threshold and knob of ``analyze``, documented in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lm_forget.errors import ConfigError

OUTCOMES = ("forget_ratio", "forget_ratio_flipped", "forget_gap")


@dataclass
class AnalysisOptions:
    """Options of :func:`lm_forget.analysis.api.analyze` (CLI flags have the same names).

    Attributes:
        split: split of the docs whose accuracies form the task-level outcome and predictors
            ("test" = held-out eval docs; "train" = the forget set, when lm-eval scored it).
        outcome: task-level forgetting measure the predictors are tested against: ``forget_ratio``
            (random labels, denominator acc_ft - chance), ``forget_ratio_flipped`` (denominator
            acc_ft - (1 - acc_ft)) or ``forget_gap`` (acc_forget - chance).
        same_margin: behaviour "kept" when the whole CI of acc_ft - acc_forget is <= this.
        pretrained_margin: behaviour "to_pretrained" when the whole CI of acc_forget - acc_pretrained is
            <= this (and the drop CI is above same_margin); intervals spanning two categories give
            "inconclusive".
        chance_margin: at_chance "yes" when the whole CI of acc_forget - chance lies within +-this, "no"
            when it lies outside, else "inconclusive".
        min_denominator: forget ratios are defined only when the fine-tuned accuracy's lower CI bound
            exceeds chance + this; otherwise NaN with the reason in ``ratio_note`` (a model that never
            reliably learned the task cannot forget it). Matrix cells use the same rule.
        alpha: significance level for the corrected p-values and the summary.
        correction: family-wise correction shown as the headline: ``holm`` or ``bh`` (both are tabled).
        confidence_level: level of bootstrap and binomial (Wilson) intervals.
        n_bootstrap: resamples of ``scipy.stats.bootstrap``.
        n_permutations: resamples of ``scipy.stats.permutation_test`` (exact when n! is smaller).
        min_n_test: fewer observations than this: the test is not run (reported as skipped).
        min_n_warn: fewer observations than this: the test runs with a small-n warning.
        example_min_forgotten: example-level tests need at least this many forgotten and kept docs.
        seed: seed of bootstrap/permutation generators (results are reproducible).
        equivalence_rho: a non-significant Spearman rho is called "no association" only when its CI
            excludes |rho| >= this; otherwise the result is inconclusive.
        power_rho: the report gives the power of the primary test to detect this Spearman rho at the n.
        n_power: simulated data sets for that power.
        formats: figure file formats.
        predictors: registered predictors to test (empty = all: confidence, difficulty, variance).
    """

    split: str = "test"
    outcome: str = "forget_ratio"
    same_margin: float = 0.02
    pretrained_margin: float = 0.0
    chance_margin: float = 0.02
    min_denominator: float = 0.05
    alpha: float = 0.05
    correction: str = "holm"
    confidence_level: float = 0.95
    n_bootstrap: int = 2000
    n_permutations: int = 2000
    min_n_test: int = 4
    min_n_warn: int = 10
    example_min_forgotten: int = 5
    seed: int = 0
    equivalence_rho: float = 0.3
    power_rho: float = 0.5
    n_power: int = 2000
    formats: tuple[str, ...] = field(default=("png", "pdf"))
    predictors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ConfigError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if self.correction not in ("holm", "bh"):
            raise ConfigError(f"correction must be 'holm' or 'bh', got {self.correction!r}")
        if not 0 < self.alpha < 1 or not 0 < self.confidence_level < 1:
            raise ConfigError("alpha and confidence_level must lie strictly between 0 and 1")
        if self.min_n_test < 3:
            raise ConfigError("min_n_test must be at least 3 (a correlation of 2 points is always +-1)")

    def to_dict(self) -> dict:
        return asdict(self)
