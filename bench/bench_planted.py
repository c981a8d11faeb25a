"""Planted-truth validation of the analysis at scale: coverage of the intervals and false-positive rate.

Each simulated study writes real lm-eval output folders (``results_*.json`` + ``samples_*.jsonl``) with
known per-task accuracies (``lm_forget.analysis.simulate``) and runs the analysis's compute half on them
(``results.compute_results``: reading, joining, metrics, bootstrap, tests; no figures).

* coverage: share of intervals that contain the planted value, for acc_finetuned, acc_forget, forget_gap,
  forget_drop, forget_ratio (nominal 95%; the target is +-3 points);
* false-positive rate: planted task-level rho = 0 (confidence independent of forgetting): share of studies
  with any "significant" verdict (family-wise, Holm over the hypotheses) and per hypothesis;
* n = 4 tasks with a perfect planted association: share of "significant" verdicts (must be 0);
* power: planted rho = 0.5, share of "significant" vs the simulated power the report prints (the planted
  rho is between the latent task values; the observed values carry doc-sampling noise, so the observed
  power is expected below the printed one).

The bench uses the confidence predictor's task-level values only (the example-level tests are not measured
here); studies run in ``--workers`` processes.

    python bench/bench_planted.py --studies 500 --workers 2   # the recorded run (docs/analysis.md)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from lm_forget.analysis.confidence import confidence
from lm_forget.analysis.options import AnalysisOptions
from lm_forget.analysis.registry import register
from lm_forget.analysis.results import compute_results
from lm_forget.analysis.simulate import PlantedTask, correlated_tasks, simulate_phases, write_study
from lm_forget.analysis.verdicts import verdict

QUANTITIES = ("acc_finetuned", "acc_forget", "forget_gap", "forget_drop", "forget_ratio")


def truth(t: PlantedTask) -> dict[str, float]:
    return {"acc_finetuned": t.acc_finetuned, "acc_forget": t.acc_forget, "forget_gap": t.acc_forget - 0.5,
            "forget_drop": t.forget_drop, "forget_ratio": t.forget_ratio}


def study(root: Path, tasks: list[PlantedTask], seed: int, opts: AnalysisOptions):
    folders = write_study(root, simulate_phases(tasks, seed=seed))
    return compute_results(**folders, options=opts)


def significant(res, opts: AnalysisOptions) -> list[bool]:
    return [verdict(r, opts) == "significant" for _, r in res.tests[res.tests["role"] == "primary"].iterrows()]


@register("confidence_task_level")
def _confidence_task_level(ctx):
    """The confidence predictor's task-level values only (the bench skips the example-level tests)."""
    return [v for v in confidence(ctx) if v.level == "task"]


OPTS = AnalysisOptions(n_bootstrap=1000, n_permutations=1000, n_power=500, predictors=("confidence_task_level",))


def one(args: tuple[int, int, int, bool, bool]) -> dict:
    """One simulated null study (+ an n = 4 study and a rho = 0.5 study when asked)."""
    s, n_tasks, n_docs, four, power = args
    out: dict = {"cover": {q: [] for q in QUANTITIES}}
    with tempfile.TemporaryDirectory() as tmp:
        tasks = correlated_tasks(n_tasks, rho=0.0, seed=s, n_docs=n_docs)
        res = study(Path(tmp) / "null", tasks, s, OPTS)
        by_task = {t.name: truth(t) for t in tasks}
        for _, row in res.metrics.iterrows():
            for q, v in by_task[row["task"]].items():
                out["cover"][q].append(bool(row[f"{q}_lo"] <= v <= row[f"{q}_hi"]))
        out["sig"] = significant(res, OPTS)
        if four:
            tasks4 = [PlantedTask(f"forget_f{i}", n_docs, 0.55, 0.9, 0.9 - 0.1 * (i + 1), 0.6 + 0.1 * i)
                      for i in range(4)]
            out["sig4"] = significant(study(Path(tmp) / "four", tasks4, s, OPTS), OPTS)
        if power:
            res = study(Path(tmp) / "pow", correlated_tasks(n_tasks, rho=0.5, seed=10_000 + s, n_docs=n_docs),
                        10_000 + s, OPTS)
            row = res.tests[(res.tests["role"] == "primary") & (res.tests["predictor"] == "confidence_finetuned")]
            out["pow"] = (verdict(row.iloc[0], OPTS) == "significant", float(row["power"].iloc[0]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=500)
    ap.add_argument("--four-studies", type=int, default=100)
    ap.add_argument("--power-studies", type=int, default=100)
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--docs", type=int, default=150)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    a = ap.parse_args()
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(s, a.tasks, a.docs, s < a.four_studies, s < a.power_studies) for s in range(a.studies)]
    cover = {q: [] for q in QUANTITIES}
    any_sig, per_hyp, n4_sig, pow_sig, pow_pred = [], [], [], [], []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.workers) as pool:
        for i, r in enumerate(pool.map(one, jobs, chunksize=4), 1):
            for q in QUANTITIES:
                cover[q].extend(r["cover"][q])
            any_sig.append(any(r["sig"]))
            per_hyp.extend(r["sig"])
            n4_sig.extend(r.get("sig4", []))
            if "pow" in r:
                pow_sig.append(r["pow"][0])
                pow_pred.append(r["pow"][1])
            if i % 50 == 0:
                print(f"{i} studies, {time.perf_counter() - t0:.0f} s", flush=True)
    figures = {
        "studies": a.studies, "tasks_per_study": a.tasks, "docs_per_task": a.docs,
        "intervals_per_quantity": len(cover["acc_finetuned"]),
        "coverage": {q: float(np.mean(v)) for q, v in cover.items()},
        "false_positive_familywise": float(np.mean(any_sig)),
        "false_positive_per_hypothesis": float(np.mean(per_hyp)),
        "n4_studies": a.four_studies, "significant_at_n4": float(np.mean(n4_sig)) if n4_sig else None,
        "power_studies": a.power_studies,
        "power_observed_rho05": float(np.mean(pow_sig)) if pow_sig else None,
        "power_reported_rho05": float(np.mean(pow_pred)) if pow_pred else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(figures, indent=2))
    if a.out:
        a.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
