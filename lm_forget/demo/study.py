"""``run_demo``: write the demo suite and model, then run the whole study on them with the real runner."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lm_forget.data.hashing import canonical_json, stable_digest
from lm_forget.demo.families import DEMO_FAMILIES
from lm_forget.demo.model import TinyModelSpec, save_pretrained_model
from lm_forget.demo.suite import read_all_docs, write_suite
from lm_forget.io import atomic_dir, atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class DemoSettings:
    """Everything the demo's data, model and study depend on.

    Attributes:
        families: task families to generate (``demo_<family>``).
        forget: families to forget (each one is a cell of the cross-task matrix).
        seed: data and model seed.
        train_size: training docs per family (fine-tune pool; the forget set is its first ``num_examples``).
        eval_size: held-out docs per family.
        num_examples: forget-set size.
        finetune_epochs: epochs of the (full) fine-tune on all families together.
        forget_epochs: epochs of each random-label forget pass.
        finetune_lr: fine-tune learning rate (high: the model starts from random weights).
        forget_lr: forget learning rate.
        batch_size: train batch size.
        forget_seeds: seeds of the forget pass (random labels, data order).
        model: shape of the tiny model.
        threads: torch CPU threads (the run config's ``threads``; 1 is fastest for the tiny model).
        methods: forgetting methods to compare (the run config's ``forget.methods``); empty: random labels.
        dynamics_points: per-doc confidence snapshots per fine-tune / forget phase (``dynamics_every`` is
            derived from it); 0: no dynamics (no learning/forgetting-order figure).
        relearn_k: forget-set docs relearned on gold labels (one relearn step per k); empty: no relearn stage.
        relearn_lr: relearn learning rate (the tiny model barely moves at the default 3e-5).
        relearn_epochs: relearn epochs.
        relearn_batch_size: relearn batch size (small: k may be 8 docs).
        deep: add the stages ``mia`` and ``eval_quantized`` ("How deep is the forgetting?", docs/study.md):
            membership inference and quantization of every forgotten model, besides relearning and its control.
    """

    families: list[str] = field(default_factory=lambda: list(DEMO_FAMILIES))
    forget: list[str] = field(default_factory=lambda: list(DEMO_FAMILIES))
    seed: int = 0
    train_size: int = 512
    eval_size: int = 200
    num_examples: int = 512
    finetune_epochs: float = 8.0
    forget_epochs: float = 12.0
    finetune_lr: float = 3e-3
    forget_lr: float = 3e-3
    batch_size: int = 16
    forget_seeds: list[int] = field(default_factory=lambda: [0])
    model: TinyModelSpec = field(default_factory=TinyModelSpec)
    threads: int = 1
    methods: list[str] = field(default_factory=list)
    dynamics_points: int = 10
    relearn_k: list[int] = field(default_factory=lambda: [32])
    relearn_lr: float = 3e-3
    relearn_epochs: float = 4.0
    relearn_batch_size: int = 4
    deep: bool = False


# three families (two shared-nothing lookups and the copy rule), one forget cell; pools and test splits as large as
# the full demo's reachability needs (TOST near chance: >= 84 forget docs; behaviours: >= 150 held-out docs)
QUICK = DemoSettings(families=["review", "kind", "motif"], forget=["review"], train_size=256,
                     eval_size=200, num_examples=256, finetune_epochs=12.0, relearn_k=[8, 32])


def demo_settings(quick: bool = False, **overrides: Any) -> DemoSettings:
    base = asdict(QUICK if quick else DemoSettings())
    base.update(overrides)
    base["model"] = TinyModelSpec(**base["model"]) if isinstance(base["model"], dict) else base["model"]
    return DemoSettings(**base)


def prepare(out: Path, settings: DemoSettings) -> dict[str, Path]:
    """Write the suite and the pretrained model under ``out`` (skipped when already there).

    Their folders carry a hash of the settings, so different settings never mix in one run dir and the
    runner's step keys (which include these paths) change with them.
    """
    # only what the data and the initial model depend on: changing training settings reuses both
    made_of = {k: v for k, v in asdict(settings).items()
               if k in ("families", "seed", "train_size", "eval_size", "model")}
    key = stable_digest(canonical_json(made_of))[:10]
    tasks_dir, model_dir = out / f"tasks-{key}", out / f"model-{key}"
    if not (tasks_dir / "suite.json").is_file():
        # every file is written atomically and suite.json last, so a half-written suite is never reused
        names = write_suite(tasks_dir, settings.families, seed=settings.seed, train_size=settings.train_size,
                            eval_size=settings.eval_size)
        atomic_write_text(tasks_dir / "suite.json", json.dumps({"tasks": names, **asdict(settings)}, indent=2))
    if not (model_dir / "config.json").is_file():
        names = [f"demo_{f}" for f in settings.families]
        docs = read_all_docs(tasks_dir, names)
        texts = [d["prompt"] for d in docs] + [c for d in docs for c in d["choices"]]
        with atomic_dir(model_dir) as tmp:
            save_pretrained_model(tmp, texts, settings.model, seed=settings.seed)
    return {"tasks": tasks_dir, "model": model_dir}


def run_config(out: Path, settings: DemoSettings, paths: dict[str, Path]) -> dict[str, Any]:
    """The run config (as a YAML mapping) of the demo study."""
    tasks = [f"demo_{f}" for f in settings.families]
    return {
        "name": "lm-forget demo",
        "run_dir": str(out.resolve()),
        "model": {"name_or_path": str(paths["model"].resolve()), "dtype": "float32"},
        "tasks": {"finetune": tasks, "forget": [f"demo_{f}" for f in settings.forget], "eval": tasks,
                  "task_dirs": [str(paths["tasks"].resolve())]},
        "stages": _stages(settings),
        "seeds": list(settings.forget_seeds),
        "data": {"seed": settings.seed, "train_size": settings.train_size, "eval_size": settings.eval_size},
        "finetune": {"use_lora": False, "learning_rate": settings.finetune_lr,
                     "num_train_epochs": settings.finetune_epochs,
                     "per_device_train_batch_size": settings.batch_size, "num_examples": settings.train_size,
                     **_train_args(settings), **_dynamics(settings, len(tasks) * settings.train_size,
                                                          settings.finetune_epochs)},
        "forget": {"use_lora": False, "learning_rate": settings.forget_lr, "num_train_epochs": settings.forget_epochs,
                   "per_device_train_batch_size": settings.batch_size, "num_examples": [settings.num_examples],
                   "method": "random_labels", **_train_args(settings),
                   **_dynamics(settings, settings.num_examples, settings.forget_epochs),
                   **({"methods": list(settings.methods)} if settings.methods else {})},
        **({"relearn": {"num_examples": list(settings.relearn_k), "pool": "forget_set",
                        "learning_rate": settings.relearn_lr, "num_train_epochs": settings.relearn_epochs,
                        "per_device_train_batch_size": settings.relearn_batch_size, "dataloader_num_workers": 0}}
           if _relearns(settings) else {}),
        "device": "cpu", "eval": {"backend": "hf", "batch_size": 64},
        "analysis": {"layer": -5, "feature_split": "train"},
        "threads": settings.threads,
    }


def _relearns(settings: DemoSettings) -> bool:
    """Relearning runs unless off, or the demo compares methods (relearn cells follow one method for now)."""
    return bool(settings.relearn_k) and not settings.methods


def _stages(settings: DemoSettings) -> list[str]:
    relearn = ["relearn", "eval_relearn"] if _relearns(settings) else []
    deep = ["mia", "eval_quantized"] if settings.deep else []
    return ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", *relearn, *deep, "features",
            "analyze"]


def _dynamics(settings: DemoSettings, docs: int, epochs: float) -> dict[str, Any]:
    """``dynamics_every`` in optimizer steps: about ``dynamics_points`` snapshots over the phase."""
    if settings.dynamics_points <= 0:
        return {}
    steps = math.ceil(docs / settings.batch_size) * epochs
    return {"dynamics_every": max(1, int(steps // settings.dynamics_points))}


def _train_args(settings: DemoSettings) -> dict[str, Any]:
    # short warmup then cosine decay: stable from random weights at a high peak learning rate
    return {"lr_scheduler_type": "cosine", "warmup_steps": 0.05, "logging_steps": 20, "save_steps": 200,
            "save_total_limit": 1, "weight_decay": 0.0, "dataloader_num_workers": 0}
