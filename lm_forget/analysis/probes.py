"""Linear probes (shallowness): L2-regularized logistic regression with early stopping on hidden states
of (question, answer) pairs, classifying right vs wrong answers.

scikit-learn's ``SGDClassifier(loss="log_loss", penalty="l2", early_stopping=True)`` is exactly an
L2 logistic probe with early stopping on a held-out validation fraction; scikit-learn is already
installed as a dependency of lm-eval, so no new dependency (and no hand-written training loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ProbeConfig:
    """Probe settings.

    Attributes:
        alpha: L2 penalty strength of SGDClassifier (on standardized features).
        validation_fraction: share of training pairs held out for early stopping.
        n_iter_no_change: epochs without validation improvement before stopping.
        max_iter: epoch cap.
        seed: random_state of the classifier (shuffling and validation split).
    """

    alpha: float = 1e-3
    validation_fraction: float = 0.1
    n_iter_no_change: int = 5
    max_iter: int = 200
    seed: int = 0


def pair_texts(docs: list[dict]) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Both (context, continuation) pairs per doc, in order [choice 0, choice 1], and right(1)/wrong(0).

    Pairs, not joined strings: ``hidden.scored_ids`` encodes them as lm-eval scores them.
    """
    from lm_forget.data.docs import scoring_pair

    texts, labels = [], []
    for doc in docs:
        for i in (0, 1):
            context, continuation = scoring_pair(doc, i)
            texts.append((context, continuation))
            labels.append(int(i == int(doc["label"])))
    return texts, np.asarray(labels)


def train_probe(x_train, y_train, x_test, y_test, config: ProbeConfig = ProbeConfig()) -> dict:
    """Fit one probe; accuracy per pair and per doc (the choice the probe scores higher; chance 0.5)."""
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), SGDClassifier(
        loss="log_loss", penalty="l2", alpha=config.alpha, early_stopping=True,
        validation_fraction=config.validation_fraction, n_iter_no_change=config.n_iter_no_change,
        max_iter=config.max_iter, random_state=config.seed))
    clf.fit(np.asarray(x_train, dtype=np.float64), y_train)
    score = clf.decision_function(np.asarray(x_test, dtype=np.float64))
    pair_acc = float(((score > 0).astype(int) == y_test).mean())
    # docs are consecutive pairs [choice 0, choice 1]; the doc is right when the gold pair scores higher
    s, y = score.reshape(-1, 2), y_test.reshape(-1, 2)
    doc_acc = float((s.argmax(1) == y.argmax(1)).mean())
    return {"probe_pair_acc": pair_acc, "probe_doc_acc": doc_acc, "n_train_pairs": len(y_train),
            "n_test_pairs": len(y_test), "epochs": int(clf[-1].n_iter_)}


def collect_states(model, tokenizer, texts, *, layers, batch_size, device, padding_side="right",
                   progress=None) -> dict[int, np.ndarray]:
    """Stack last-token states per layer (probes need every row; float32 to halve memory)."""
    from lm_forget.analysis.hidden import last_token_states

    parts: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
    for states in last_token_states(model, tokenizer, texts, layers=layers, batch_size=batch_size,
                                    padding_side=padding_side, device=device, progress=progress):
        for layer, h in states.items():
            parts[layer].append(h.detach().to("cpu").float().numpy())
    return {layer: np.concatenate(p) for layer, p in parts.items()}


def control_labels(labels: np.ndarray, seed: int) -> np.ndarray:
    """A control task (Hewitt & Liang's selectivity): the docs' gold positions permuted across docs.

    Same features, same label balance, labels unrelated to the input: what a probe decodes here it
    memorizes, not reads. Pairs stay [choice 0, choice 1] with exactly one "right" per doc.
    """
    gold = np.asarray(labels).reshape(-1, 2).argmax(1)
    shuffled = np.random.default_rng(seed).permutation(gold)
    out = np.zeros((len(shuffled), 2), dtype=int)
    out[np.arange(len(shuffled)), shuffled] = 1
    return out.reshape(-1)


def with_controls(row: dict, control: dict) -> dict:
    """A probe row plus the control probe's accuracy, selectivity (probe - control) and both accuracies' intervals
    (at 95% in the features file; an analysis recomputes them at its ``confidence_level``: :func:`probe_intervals`)."""
    out = probe_intervals({**row, "control_doc_acc": control["probe_doc_acc"]})
    out["selectivity"] = out["probe_doc_acc"] - out["control_doc_acc"]
    return out


def probe_intervals(row: dict, level: float = 0.95) -> dict:
    """``row`` with ``<probe|control>_doc_acc_lo`` / ``_hi``: the report's one accuracy interval
    (:func:`lm_forget.analysis.metrics.accuracy_ci`) at ``level``, over the row's test docs."""
    from lm_forget.analysis.metrics import accuracy_ci

    out = dict(row)
    n = row["n_test_pairs"] // 2
    for name in ("probe", "control"):
        if f"{name}_doc_acc" in row:
            acc, low, high = accuracy_ci(round(row[f"{name}_doc_acc"] * n), n, level)
            out[f"{name}_doc_acc"], out[f"{name}_doc_acc_lo"], out[f"{name}_doc_acc_hi"] = acc, low, high
    return out
