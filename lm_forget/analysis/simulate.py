"""Planted-truth studies: lm-eval output folders (``results_*.json`` + ``samples_*.jsonl``, as
``lm_eval --log_samples`` writes them) with known per-task accuracies, a known task-level association and
example-level noise, to check that the analysis recovers what was planted (tests/ and bench/bench_planted.py).

Per doc, the phases' correctness comes from a Gaussian copula (shared latent, ``pairing`` correlation), so
each phase's accuracy has exactly the planted expectation and the phases are paired as real evaluations of
the same docs are. In ``noise`` mode the forget model is the fine-tuned logit margin plus pure noise (and the
control cell the same with independent noise): nothing targets any doc.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lm_forget.analysis.uncertainty import stable_rng

TS = "2026-01-01T00-00-00.000001"


@dataclass(frozen=True)
class PlantedTask:
    """The truth of one task: expected accuracies per phase and the fine-tuned model's mean confidence
    when right (the confidence predictor's planted value)."""

    name: str
    n_docs: int
    acc_pretrained: float
    acc_finetuned: float
    acc_forget: float
    confidence: float = 0.8

    @property
    def forget_drop(self) -> float:
        return self.acc_finetuned - self.acc_forget

    @property
    def forget_ratio(self) -> float:
        den = self.acc_finetuned - 0.5
        return self.forget_drop / den if den > 0 else math.nan


def write_phase(root: Path, model: str, docs: dict[str, list[tuple[str, int, float, bool]]]) -> Path:
    """One lm-eval 0.4 output folder: ``docs`` = task -> [(doc id, label, p_gold, correct)]."""
    folder = Path(root) / model.replace("/", "__")
    folder.mkdir(parents=True, exist_ok=True)
    results = {"results": {}, "configs": {}, "model_name": model}
    for task, rows in docs.items():
        results["configs"][task] = {"task": task, "output_type": "multiple_choice"}
        lines = []
        for i, (doc_id, label, p_gold, correct) in enumerate(rows):
            p_gold = min(max(p_gold, 1e-9), 1 - 1e-9)
            ll = [0.0, 0.0]
            ll[label], ll[1 - label] = math.log(p_gold), math.log(1 - p_gold)
            doc = {"id": doc_id, "task": task, "split": "test", "prompt": "q", "choices": ["a", "b"],
                   "label": label, "continuation": "", "target_delimiter": " "}
            lines.append(json.dumps({"doc_id": i, "doc": doc, "target": str(label),
                                     "resps": [[[repr(x), "False"]] for x in ll],
                                     "filtered_resps": [[repr(x), "False"] for x in ll], "acc": float(correct)}))
        (folder / f"samples_{task}_{TS}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / f"results_{TS}.json").write_text(json.dumps(results), encoding="utf-8")
    return Path(root)


def _p_gold(correct: np.ndarray, conf: float, rng: np.random.Generator) -> np.ndarray:
    """A P(gold) consistent with correctness (> 0.5 iff right), mean ``conf`` on right docs."""
    jitter = rng.uniform(-1, 1, len(correct)) * min(conf - 0.5, 1 - conf) * 0.9
    right = conf + jitter
    return np.where(correct, right, 1 - right)


def simulate_phases(tasks: list[PlantedTask], *, seed: object, pairing: float = 0.7,
                    forget_seeds: tuple[int, ...] = (), finetune_seeds: tuple[int, ...] = ()) -> dict[str, dict]:
    """Per-phase docs of a copula study (see the module docstring); ``forget_seeds`` adds phases
    ``forget_s<k>``: further forget passes of the same expected accuracy on the same docs. ``finetune_seeds``
    adds, per seed k, a further fine-tuned model ``finetuned_f<k>`` (same expected accuracy and confidence) with
    its own forget passes ``forget_f<k>`` and ``forget_f<k>_s<j>`` (j in ``forget_seeds``)."""
    from scipy.stats import norm

    phases: dict[str, dict] = {"pretrained": {}, "finetuned": {}, "forget": {}}

    def add(phase: str, t: PlantedTask, rng: np.random.Generator, shared: np.ndarray, acc: float, conf: float,
            ids: list[str], labels: np.ndarray) -> None:
        z = math.sqrt(pairing) * shared + math.sqrt(1 - pairing) * rng.standard_normal(len(ids))
        correct = norm.cdf(z) < acc
        p = _p_gold(correct, conf, rng)
        phases.setdefault(phase, {})[t.name] = list(zip(ids, labels.tolist(), p.tolist(), correct.tolist(),
                                                        strict=True))

    for t in tasks:
        rng = stable_rng("planted", seed, t.name)
        ids = [f"{t.name}/test/{i:05d}" for i in range(t.n_docs)]
        labels = rng.integers(0, 2, t.n_docs)
        shared = rng.standard_normal(t.n_docs)
        for phase, acc in (("pretrained", t.acc_pretrained), ("finetuned", t.acc_finetuned),
                           ("forget", t.acc_forget)):
            add(phase, t, rng, shared, acc, t.confidence if phase == "finetuned" else 0.6, ids, labels)
        for k in forget_seeds:
            add(f"forget_s{k}", t, stable_rng("planted-forget", seed, t.name, k), shared, t.acc_forget, 0.6,
                ids, labels)
        for f in finetune_seeds:
            extra = stable_rng("planted-finetune", seed, t.name, f)
            add(f"finetuned_f{f}", t, extra, shared, t.acc_finetuned, t.confidence, ids, labels)
            add(f"forget_f{f}", t, extra, shared, t.acc_forget, 0.6, ids, labels)
            for k in forget_seeds:
                add(f"forget_f{f}_s{k}", t, stable_rng("planted-forget", seed, t.name, f, k), shared,
                    t.acc_forget, 0.6, ids, labels)
    return phases


def simulate_noise(names: list[str], n_docs: int, *, seed: object, margin_mean: float = 1.5,
                   noise: float = 1.0) -> dict[str, dict]:
    """Pure-noise forgetting: forget margin = fine-tuned logit margin + N(0, noise); the control cell adds
    independent noise of the same size. Low-confidence docs flip more, by chance alone."""
    phases: dict[str, dict] = {"pretrained": {}, "finetuned": {}, "forget": {}, "control": {}}
    for name in names:
        rng = stable_rng("noise", seed, name)
        ids = [f"{name}/test/{i:05d}" for i in range(n_docs)]
        labels = rng.integers(0, 2, n_docs).tolist()
        ft = rng.normal(margin_mean, 1.0, n_docs)
        margins = {"pretrained": rng.normal(0.2, 1.0, n_docs), "finetuned": ft,
                   "forget": ft + rng.normal(0, noise, n_docs), "control": ft + rng.normal(0, noise, n_docs)}
        for phase, m in margins.items():
            p = 1 / (1 + np.exp(-m))
            phases[phase][name] = list(zip(ids, labels, p.tolist(), (m > 0).tolist(), strict=True))
    return phases


def write_study(root: Path, phases: dict[str, dict]) -> dict[str, Path]:
    """Write each phase's folder under ``root``; returns {phase: folder} (``control`` included if present)."""
    return {name: write_phase(Path(root) / name, f"model-{name}", docs) for name, docs in phases.items()}


def correlated_tasks(n_tasks: int, *, rho: float, seed: object, n_docs: int = 300,
                     acc_finetuned: float = 0.85) -> list[PlantedTask]:
    """Tasks whose planted forget ratio and fine-tuned confidence have Gaussian-copula correlation ``rho``
    (``rho = 0``: the null; confidence independent of forgetting)."""
    rng = stable_rng("tasks", seed, n_tasks, rho)
    z = rng.standard_normal((2, n_tasks))
    conf_z, ratio_z = z[0], rho * z[0] + math.sqrt(1 - rho * rho) * z[1]
    from scipy.stats import norm

    conf = 0.6 + 0.35 * norm.cdf(conf_z)
    ratio = 0.1 + 0.8 * norm.cdf(ratio_z)
    return [PlantedTask(f"forget_p{i:02d}", n_docs, 0.55, acc_finetuned,
                        acc_finetuned - r * (acc_finetuned - 0.5), float(c))
            for i, (c, r) in enumerate(zip(conf, ratio, strict=True))]
