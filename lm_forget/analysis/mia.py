"""Membership inference on the forget set: per-doc LOSS, zlib, min-k% and min-k%++ scores, and their ROC AUC.

The definitions are open-unlearning's (locuslab/open-unlearning, ``src/evals/metrics/mia/``: ``loss.py``,
``zlib.py``, ``min_k.py``, ``min_k_plus_plus.py``, and the AUC convention of ``utils.py: mia_auc``), over the
tokens of the text lm-eval scores for a doc (prompt + gold continuation, :func:`lm_forget.data.docs.gold_pair`),
tokenized and conditioned exactly as lm-eval's ``loglikelihood_rolling`` does (its ``tok_encode`` after the
model's prefix token), so ``-loss * tokens`` is lm-eval's rolling loglikelihood of the text:

- ``loss``: mean negative log-probability of the tokens (Yeom et al. 2018);
- ``zlib``: ``loss`` / zlib-compressed length of the text in bytes (Carlini et al. 2021);
- ``min_k``: mean negative log-probability of the k% least likely tokens (Shi et al. 2024, arXiv 2310.16789);
- ``min_k_plus_plus``: the same over each token's log-probability standardized by the mean and variance of
  the log-probability under the model's own next-token distribution (Zhang et al. 2024, arXiv 2404.02936).

Every score is signed like a loss (higher: less likely a member). AUC, as open-unlearning's ``mia_auc``: the
forget-set docs labelled 0, the held-out docs 1 (sklearn ``roc_auc_score``), so 1 = the forget set looks like
training data, 0.5 = indistinguishable. Its interval: ``scipy.stats.bootstrap`` resampling both sets
independently (percentile), the AUC of each resample as the Mann-Whitney U of the held-out scores over the
forget-set scores divided by the number of pairs (scipy's ``mannwhitneyu``, equal to ``roc_auc_score``).
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SCORES = ("loss", "zlib", "min_k", "min_k_plus_plus")
#: the ``set`` of a scored doc: the forget set (members), then each set of non-members (lm_forget.run.mia_docs)
MEMBERS, NON_MEMBERS = "forget_set", ("same_split", "held_out")
#: open-unlearning's default k (``min_k.py: setup(k=0.2)``)
MIN_K = 0.2
#: open-unlearning's floor on the variance of the next-token log-probability (``min_k_plus_plus.py``)
MIN_VARIANCE = 1e-6


def token_scores(logprobs: Sequence[float], mu: Sequence[float], variance: Sequence[float], text: str,
                 k: float = MIN_K) -> dict[str, float]:
    """The four scores of one text from its tokens' log-probabilities and, per token, the mean and variance of
    the log-probability under the model's next-token distribution (``E_p[log p]``, ``Var_p[log p]``)."""
    lp = np.asarray(logprobs, dtype=float)
    if lp.size == 0:
        raise ValueError(f"no scored token in {text!r}: an empty text has no membership score")
    num_k = max(1, int(lp.size * k))
    loss = float(-lp.mean())
    standardized = (lp - np.asarray(mu, dtype=float)) / np.sqrt(np.maximum(np.asarray(variance, float), MIN_VARIANCE))
    return {"loss": loss, "zlib": loss / len(zlib.compress(text.encode("utf-8"))),
            "min_k": float(-np.sort(lp)[:num_k].mean()),
            "min_k_plus_plus": float(-np.sort(standardized)[:num_k].mean())}


def text_scores(lm: Any, texts: Sequence[str], k: float = MIN_K) -> list[dict[str, float]]:
    """Scores of each text under lm-eval model ``lm`` (an ``HFLM``): its tokenization and prefix token, one
    no-grad forward per text."""
    import torch

    out = []
    for text in texts:
        tokens = [lm.prefix_token_id, *lm.tok_encode(text)]
        if len(tokens) > lm.max_length:
            log.warning("membership text of %d tokens cut to the model's last %d", len(tokens), lm.max_length)
            tokens = [lm.prefix_token_id, *tokens[-(lm.max_length - 1):]]
        with torch.no_grad():
            logits = lm._model_call(torch.tensor([tokens], device=lm.device))[0, :-1].float()
        logp = torch.log_softmax(logits, dim=-1)
        probs = logp.exp()
        target = torch.tensor(tokens[1:], device=logp.device)
        mu = (probs * logp).sum(-1)
        variance = (probs * logp.square()).sum(-1) - mu.square()
        out.append(token_scores(logp.gather(-1, target[:, None])[:, 0].cpu().numpy(), mu.cpu().numpy(),
                                variance.cpu().numpy(), text, k))
    return out


def auc(forget: Sequence[float], held_out: Sequence[float]) -> float:
    """open-unlearning's MIA AUC: forget-set docs labelled 0, held-out docs 1 (1 = the forget set looks seen)."""
    from sklearn.metrics import roc_auc_score

    scores = np.concatenate([np.asarray(forget, float), np.asarray(held_out, float)])
    labels = np.concatenate([np.zeros(len(forget)), np.ones(len(held_out))])
    return float(roc_auc_score(labels, scores))


def _u_auc(held_out: np.ndarray, forget: np.ndarray, axis: int = -1) -> np.ndarray:
    from scipy.stats import mannwhitneyu

    return mannwhitneyu(held_out, forget, axis=axis).statistic / (held_out.shape[axis] * forget.shape[axis])


def auc_interval(forget: Sequence[float], held_out: Sequence[float], *, level: float = 0.95,
                 n_bootstrap: int = 2000, rng: np.random.Generator | None = None) -> dict[str, float]:
    """AUC with its percentile bootstrap interval (both sets resampled independently); NaN with < 2 docs a side."""
    forget_a, held_a = np.asarray(forget, float), np.asarray(held_out, float)
    if len(forget_a) < 2 or len(held_a) < 2:
        return {"auc": math.nan, "auc_lo": math.nan, "auc_hi": math.nan}
    from scipy.stats import bootstrap

    value = auc(forget_a, held_a)
    res = bootstrap((held_a, forget_a), _u_auc, vectorized=True, paired=False, method="percentile",
                    confidence_level=level, n_resamples=n_bootstrap, rng=rng)
    return {"auc": value, "auc_lo": float(res.confidence_interval.low),
            "auc_hi": float(res.confidence_interval.high)}


def auc_rows(scores: Sequence[Mapping[str, Any]], *, level: float = 0.95, n_bootstrap: int = 2000,
             seed_parts: Sequence[object] = ()) -> dict[str, dict[str, float]]:
    """Per score name: AUC and interval of per-doc rows ``{"member": 0/1, <score>: value, ...}`` (member 1 = a
    forget-set doc). The bootstrap generator is seeded by a stable hash of ``seed_parts`` and the score."""
    from lm_forget.analysis.uncertainty import stable_rng

    members = [r for r in scores if int(r["member"]) == 1]
    others = [r for r in scores if int(r["member"]) == 0]
    return {name: {**auc_interval([r[name] for r in members], [r[name] for r in others], level=level,
                                  n_bootstrap=n_bootstrap, rng=stable_rng("mia", *seed_parts, name)),
                   "forget_docs": len(members), "held_out_docs": len(others)}
            for name in SCORES}
