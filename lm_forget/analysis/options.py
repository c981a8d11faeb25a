"""``AnalysisOptions``: every threshold and knob of ``analyze``, documented in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lm_forget.errors import ConfigError

OUTCOMES = ("forget_ratio", "forget_ratio_flipped", "forget_gap")


def _help(text: str) -> dict[str, str]:
    """Field metadata: the option's description (its ``--help`` line)."""
    return {"help": text}


@dataclass
class AnalysisOptions:
    """Options of :func:`lm_forget.analysis.api.analyze` (CLI flags have the same names).

    Each field's description is its ``help`` metadata: the ``lm-forget analyze --help`` text.
    """

    split: str = field(default="test", metadata=_help(
        "split of the docs whose accuracies form the task-level outcome and predictors ('test' = held-out "
        "eval docs; 'train' = the forget set, when lm-eval scored it)."))
    outcome: str = field(default="forget_ratio", metadata=_help(
        "task-level forgetting measure the predictors are tested against: ``forget_ratio`` (random labels, "
        "denominator acc_ft - chance), ``forget_ratio_flipped`` (denominator acc_ft - (1 - acc_ft)) or "
        "``forget_gap`` (acc_forget - chance)."))
    margin: float = field(default=0.1, metadata=_help(
        "the one margin of every verdict (accuracy units): near chance = accuracy within chance +- margin (TOST, "
        "exact binomial); did not take = accuracy > chance + margin; kept = drop < margin; dropped = drop > margin; "
        "to_pretrained = acc_forget - acc_pretrained < margin; partial = it is > margin; relearned = relearning "
        "gain > margin (one-sided tests at alpha). A verdict no outcome could give at the n is reported as "
        "'needs >= N docs'."))
    min_denominator: float = field(default=0.05, metadata=_help(
        "forget ratios are defined only when the fine-tuned accuracy's lower CI bound exceeds chance + this; "
        "otherwise NaN with the reason in ``ratio_note`` (a model that never reliably learned the task cannot "
        "forget it). Matrix cells use the same rule."))
    alpha: float = field(default=0.05, metadata=_help(
        "significance level for the corrected p-values and the summary."))
    correction: str = field(default="holm", metadata=_help(
        "family-wise correction shown as the headline: ``holm`` or ``bh`` (both are tabled)."))
    confidence_level: float = field(default=0.95, metadata=_help(
        "level of bootstrap and binomial (Wilson) intervals."))
    n_bootstrap: int = field(default=2000, metadata=_help("resamples of ``scipy.stats.bootstrap``."))
    n_permutations: int = field(default=2000, metadata=_help(
        "resamples of ``scipy.stats.permutation_test`` (exact when n! is smaller)."))
    min_n_test: int = field(default=4, metadata=_help(
        "fewer observations than this: the test is not run (reported as skipped)."))
    min_n_warn: int = field(default=10, metadata=_help(
        "fewer observations than this: the test runs with a small-n warning."))
    example_min_forgotten: int = field(default=5, metadata=_help(
        "example-level tests need at least this many forgotten and kept docs."))
    seed: int = field(default=0, metadata=_help(
        "seed of bootstrap/permutation generators (results are reproducible)."))
    equivalence_rho: float = field(default=0.3, metadata=_help(
        "a non-significant Spearman rho is called 'no association' only when its CI excludes |rho| >= this; "
        "otherwise the result is inconclusive."))
    power_rho: float = field(default=0.5, metadata=_help(
        "the report gives the power of the primary test to detect this Spearman rho at the n."))
    n_power: int = field(default=2000, metadata=_help("simulated data sets for that power."))
    formats: tuple[str, ...] = field(default=("png", "pdf"), metadata=_help("figure file formats."))
    predictors: tuple[str, ...] = field(default=(), metadata=_help(
        "registered predictors to test (empty = all: confidence, difficulty, variance)."))

    def __post_init__(self) -> None:
        self._check_numbers()
        if self.outcome not in OUTCOMES:
            raise ConfigError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if self.correction not in ("holm", "bh"):
            raise ConfigError(f"correction must be 'holm' or 'bh', got {self.correction!r}")
        if not 0 < self.alpha < 1 or not 0 < self.confidence_level < 1:
            raise ConfigError("alpha and confidence_level must lie strictly between 0 and 1")
        if not 0 < self.margin < 0.5:
            raise ConfigError(f"margin must lie strictly between 0 and 0.5 (accuracy units), got {self.margin!r}")
        if self.min_n_test < 3:
            raise ConfigError("min_n_test must be at least 3 (a correlation of 2 points is always +-1)")

    def _check_numbers(self) -> None:
        """NaN, infinite or out-of-range thresholds would silently change every verdict: refuse them."""
        import math

        for name in ("margin", "min_denominator"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0 (an accuracy difference, e.g. 0.02), "
                                  f"got {value!r}")
        for name in ("equivalence_rho", "power_rho"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise ConfigError(f"{name} must lie strictly between 0 and 1 (a Spearman rho), got {value!r}")
        for name in ("n_bootstrap", "n_permutations", "n_power", "example_min_forgotten", "min_n_warn"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be a whole number from 0 to 2**32 - 1, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)
