"""Verdicts that can come out either way at their n, and the n from which each one becomes reachable.

Every verdict of the reports is a hypothesis test at level ``alpha`` against one margin (``AnalysisOptions.margin``):

- **near chance** (forget set): two one-sided exact binomial tests (TOST), accuracy > chance - margin and
  accuracy < chance + margin (``scipy.stats.binomtest``); the verdict when both reject.
- **did not take**: one-sided exact binomial test that accuracy > chance + margin.
- **below chance**: one-sided exact binomial test that accuracy < chance - margin.
- **paired differences** of per-doc 0/1 outcomes (the forget drop, acc_forget - acc_pretrained, relearning gains):
  one-sided one-sample t-tests of the per-doc differences against the margin (``scipy.stats.ttest_1samp``). When
  every difference is equal the t statistic is undefined; the p-value is then the exact bound
  ``((1 - b) / (1 - v)) ** n`` (Markov's inequality on differences in [-1, 1] with mean >= b; mirrored for the
  other side), so no degenerate sample is ever called decided by a zero variance alone.

A verdict is *reachable* at n when some outcome of n docs would give it; ``*_n`` return the smallest such n.
A report gives ``needs >= N docs`` instead of a verdict that cannot come out at its n.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

NEAR_CHANCE = "near chance"
DID_NOT_TAKE = "did not take"
BELOW_CHANCE = "below chance"
INCONCLUSIVE = "inconclusive"
N_MAX = 10**7  # the scans stop here: a margin so small that no study could reach it


def needs(n_needed: int) -> str:
    """The words of an unreachable verdict."""
    return f"needs >= {n_needed} docs"


@dataclass(frozen=True)
class Decision:
    """One verdict and the test behind it.

    Attributes:
        verdict: the words (``near chance``, ``did not take``, ``needs >= N docs``, ...).
        p: p-value of the test that decided; when undecided, the smallest p of the candidate verdicts.
        n: docs the test used.
        n_needed: smallest n at which the main verdict (near chance, kept) is reachable.
        test: which test, in words.
    """

    verdict: str
    p: float
    n: int
    n_needed: int
    test: str

    @property
    def reachable(self) -> bool:
        return self.n >= self.n_needed

    def to_dict(self) -> dict:
        return asdict(self)


def _check(chance: float, margin: float, alpha: float) -> None:
    if not (margin > 0 and chance - margin >= 0 and chance + margin <= 1):
        raise ValueError(f"margin {margin} must be positive and keep chance {chance} +- margin inside [0, 1]")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")


def above_p(k: int, n: int, bound: float) -> float:
    """Exact one-sided p of accuracy > ``bound`` (k of n correct)."""
    from scipy.stats import binomtest

    return float(binomtest(int(k), int(n), p=bound, alternative="greater").pvalue)


def below_p(k: int, n: int, bound: float) -> float:
    """Exact one-sided p of accuracy < ``bound`` (k of n correct)."""
    from scipy.stats import binomtest

    return float(binomtest(int(k), int(n), p=bound, alternative="less").pvalue)


def near_chance_p(k: int, n: int, chance: float, margin: float) -> float:
    """TOST p of |accuracy - chance| < margin: the larger of the two one-sided exact binomial p-values."""
    return max(above_p(k, n, chance - margin), below_p(k, n, chance + margin))


def _first_stable(ok: np.ndarray) -> int | None:
    """1-based n from which ``ok`` holds to the end (None: it fails in the upper half of the scan)."""
    half = len(ok) // 2
    if not ok[half:].all():
        return None
    fails = np.flatnonzero(~ok)
    return int(fails[-1]) + 2 if fails.size else 1


@functools.lru_cache(maxsize=512)
def near_chance_n(chance: float, margin: float, alpha: float) -> int:
    """Smallest n from which an observed accuracy as close to chance as n docs allow passes the TOST.

    Scanned with ``scipy.stats.binom`` (the same tail sums ``binomtest`` computes: ``greater`` = ``sf(k - 1)``,
    ``less`` = ``cdf(k)``), doubling the range until it holds over its whole upper half.
    """
    from scipy.stats import binom

    _check(chance, margin, alpha)
    top = 64
    while top <= N_MAX:
        n = np.arange(1, top + 1)
        best = np.full(n.shape, np.inf)
        for k in (np.floor(n * chance), np.ceil(n * chance)):
            p = np.maximum(binom.sf(k - 1, n, chance - margin), binom.cdf(k, n, chance + margin))
            best = np.minimum(best, p)
        found = _first_stable(best < alpha)
        if found is not None:
            return found
        top *= 2
    raise ValueError(f"near chance is unreachable below {N_MAX} docs at margin {margin}, alpha {alpha}")


def one_sided_n(bound: float, alpha: float) -> int:
    """Smallest n at which the most extreme outcome (all n beyond ``bound``) rejects: ``bound ** n < alpha``."""
    return max(1, math.floor(math.log(alpha) / math.log(bound)) + 1) if 0 < bound < 1 else 1


def chance_decision(k: int, n: int, *, chance: float = 0.5, margin: float, alpha: float) -> Decision:
    """``near chance`` / ``did not take`` / ``below chance`` / ``inconclusive`` / ``needs >= N docs``."""
    _check(chance, margin, alpha)
    n_needed = near_chance_n(chance, margin, alpha)
    if n == 0:
        return Decision("undefined (no docs scored)", math.nan, 0, n_needed, "none")
    tost = near_chance_p(k, n, chance, margin)
    test = f"TOST, exact binomial, chance {chance:g} +- {margin:g}"
    if tost < alpha:
        return Decision(NEAR_CHANCE, tost, n, n_needed, test)
    above = above_p(k, n, chance + margin)
    if above < alpha:
        return Decision(DID_NOT_TAKE, above, n, n_needed, f"exact binomial, accuracy > {chance + margin:g}")
    below = below_p(k, n, chance - margin)
    if below < alpha:
        return Decision(BELOW_CHANCE, below, n, n_needed, f"exact binomial, accuracy < {chance - margin:g}")
    word = needs(n_needed) if n < n_needed else INCONCLUSIVE
    return Decision(word, min(tost, above, below), n, n_needed, test)


def paired_p(d, bound: float, alternative: str) -> float:
    """One-sided p of mean(d) > bound (``greater``) or < bound (``less``) for per-doc differences in [-1, 1].

    ``scipy.stats.ttest_1samp``; when every difference is equal, the exact Markov bound of the module doc.
    """
    from scipy.stats import ttest_1samp

    d = np.asarray(d, dtype=float)
    if d.size == 0:
        return math.nan
    if np.ptp(d) == 0:
        v = float(d[0])
        if alternative == "less":
            return 1.0 if v >= bound else min(1.0, (1 - bound) / (1 - v)) ** d.size
        return 1.0 if v <= bound else min(1.0, (1 + bound) / (1 + v)) ** d.size
    return float(ttest_1samp(d, bound, alternative=alternative).pvalue)


def paired_n(sd: float, margin: float, alpha: float) -> int:
    """Smallest n at which an observed mean difference of 0 with per-doc SD ``sd`` is shown < margin (one-sided
    t-test); with no spread, the exact bound's n (``(1 - margin) ** n < alpha``)."""
    from scipy.stats import t

    if not math.isfinite(sd) or sd <= 0:
        return one_sided_n(1 - margin, alpha)
    top = 64
    while top <= N_MAX:
        n = np.arange(2, top + 1)
        ok = margin / (sd / np.sqrt(n)) > t.ppf(1 - alpha, n - 1)
        found = _first_stable(ok)
        if found is not None:
            return found + 1
        top *= 2
    raise ValueError(f"a paired verdict is unreachable below {N_MAX} docs at margin {margin}, sd {sd}")


BEHAVIOURS = ("kept", "partial", "to_pretrained")


def behaviour_decision(drop, above_pre, *, margin: float, alpha: float) -> tuple[str, list[str], dict[str, float]]:
    """The behaviour of one task from per-doc differences ``drop`` (fine-tuned - forget) and ``above_pre``
    (forget - pretrained): (verdict, candidates, p-values).

    kept: drop < margin; dropped: drop > margin, then to_pretrained: forget - pretrained < margin, partial:
    forget - pretrained > margin (one-sided paired tests at ``alpha``). A category stays a candidate until its
    opposite is shown. One candidate left: that is the verdict; several: ``inconclusive``, or ``needs >= N docs``
    when even no difference at all could not be shown within the margin at this n (from the observed SD of the
    comparison left open: forget - pretrained once the drop is shown, else the drop).
    """
    p = {"kept": paired_p(drop, margin, "less"), "dropped": paired_p(drop, margin, "greater"),
         "to_pretrained": paired_p(above_pre, margin, "less"), "partial": paired_p(above_pre, margin, "greater")}
    cands = []
    if not p["dropped"] < alpha:
        cands.append("kept")
    if not p["kept"] < alpha:
        if not p["partial"] < alpha:
            cands.append("to_pretrained")
        if not p["to_pretrained"] < alpha:
            cands.append("partial")
    if len(cands) == 1:
        return cands[0], cands, p
    # the comparison left open: forget vs pretrained once the drop is shown, else the drop itself
    open_diff = np.asarray(above_pre if p["dropped"] < alpha else drop, dtype=float)
    n = len(open_diff)
    sd = float(np.std(open_diff, ddof=1)) if n > 1 else math.nan
    n_needed = paired_n(sd, margin, alpha)
    return (needs(n_needed) if n < n_needed else INCONCLUSIVE), cands, p
