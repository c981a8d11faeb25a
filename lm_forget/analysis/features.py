"""``lm-forget features``: variance (and optional probe) features of one model on forget-task docs.

Writes ``<out>/features.json`` (read back by ``analyze --features``) and, with probes, ``probes.csv``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lm_forget.data.config import DataConfig
from lm_forget.errors import ConfigError, DataError
from lm_forget.modeling import ModelRef

log = logging.getLogger(__name__)

FEATURES_FILE = "features.json"
FORMAT_VERSION = 1


@dataclass
class FeatureConfig:
    """What ``extract_features`` computes.

    Attributes:
        model: the model (``ModelRef``: base id or folder, revision, tokenizer, dtype, and the PEFT/LoRA
            adapter on it, if any), as every other step receives it.
        tasks: forget task names.
        data: how the docs are sampled (the run's ``DataConfig``): features are computed on exactly the
            docs the trainer trained on and lm-eval scores.
        layer: hidden-state index (0 = embeddings; negative from the end; default -5 = fifth-from-last),
            a list of them, or "all".
        split: docs whose variance is measured ("test" = held-out eval docs, "train" = forget pool).
        role: label of this model in the report (e.g. pretrained, finetuned, forget); default: derived.
        batch_size: docs per forward pass.
        padding_side: "right" or "left" (results agree either way; see hidden.py).
        device: torch device; None picks cuda/mps/cpu.
        dtype: model dtype override ("float32", "bfloat16", ...; None: ``model.dtype``; "auto" = float32 on
            CPU, the checkpoint's own on an accelerator, see ``lm_forget.train.device``); statistics are
            always float64.
        task_dirs: extra folders of task YAMLs (derived tasks).
        limit: use at most this many docs per task and split (None = all).
        probes: also train linear probes (train split -> test split) for ``probe_layers``.
        probe_layers: layer spec of the probes (default "all").
        probe_seed: seed of the probes.
    """

    model: ModelRef
    tasks: list[str] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    layer: int | list[int] | str = -5
    split: str = "test"
    role: str | None = None
    batch_size: int = 16
    padding_side: str = "right"
    device: str | None = None
    dtype: str | None = None
    task_dirs: tuple = ()
    limit: int | None = None
    probes: bool = False
    probe_layers: int | list[int] | str = "all"
    probe_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "limit"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"--{name.replace('_', '-')} {value!r}: must be a whole number >= 1 "
                                  f"({'docs per forward pass' if name == 'batch_size' else 'docs per task and split'})")
        if self.split not in ("train", "test"):
            raise ConfigError(f"--split {self.split!r}: use train (the forget pool) or test (held-out docs)")

    def default_role(self) -> str:
        return self.role or Path(self.model.adapter or self.model.name_or_path).name or "model"


def _docs(task: str, split: str, cfg: FeatureConfig) -> list[dict]:
    from lm_forget.data.api import load_docs

    docs = load_docs(task, split, task_dirs=tuple(cfg.task_dirs), data=cfg.data)
    docs = docs[: cfg.limit] if cfg.limit else docs
    if len(docs) < 2:
        raise DataError(f"task {task!r} split {split!r} has {len(docs)} docs; variance needs at least two")
    return docs


def run_features(cfg: FeatureConfig, out: Path) -> Path:
    """Compute the features of ``cfg`` and write them under ``out``; returns ``out/features.json``."""
    from lm_forget.analysis.hidden import n_hidden_states, resolve_layers
    from lm_forget.analysis.probes import ProbeConfig, collect_states, pair_texts, train_probe
    from lm_forget.analysis.variance import stream_variance, variance_context
    from lm_forget.modeling import load_for_inference
    from lm_forget.train.device import resolve_precision

    if not cfg.tasks:
        raise DataError("no tasks given: pass --tasks forget_x,forget_y")
    precision = resolve_precision(device=cfg.device, dtype=cfg.dtype or cfg.model.dtype)
    device = precision.device
    model, tok = load_for_inference(cfg.model, device=device, dtype=precision.dtype)
    n_states = n_hidden_states(model)
    layers = resolve_layers(cfg.layer, n_states)
    # the layer the variance predictor uses: the (first) requested one; -5 (the paper's) for "all"
    first = cfg.layer if isinstance(cfg.layer, int) else (cfg.layer[0] if cfg.layer != "all" else -5)
    primary = resolve_layers(first if -n_states <= first < n_states else 0, n_states)[0]
    record = {"format": FORMAT_VERSION, "role": cfg.default_role(), "model": cfg.model.name_or_path,
              "peft": cfg.model.adapter, "revision": cfg.model.revision, "tokenizer": cfg.model.tokenizer,
              "gguf_file": cfg.model.gguf_file,
              "split": cfg.split, "device": device, "dtype": precision.dtype,
              "layers": layers, "primary_layer": primary, "n_hidden_states": n_states,
              "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
              "tasks": {}, "probes": []}
    for task in cfg.tasks:
        docs = _docs(task, cfg.split, cfg)
        acc = stream_variance(model, tok, [variance_context(d) for d in docs], layers=layers,
                              batch_size=cfg.batch_size, padding_side=cfg.padding_side, device=device,
                              progress=f"variance {task}")
        record["tasks"][task] = {"n_docs": len(docs), "doc_ids": [d["id"] for d in docs],
                                 "variance": {str(k): a.trace for k, a in acc.items()}}
        log.info("%s: variance at hidden_states[%d] = %.4g over %d docs", task, primary,
                 acc[primary].trace if primary in acc else math.nan, len(docs))
    if cfg.probes:
        from lm_forget.analysis.probes import control_labels, with_controls

        probe_layers = resolve_layers(cfg.probe_layers, n_states)
        pcfg = ProbeConfig(seed=cfg.probe_seed)
        for task in cfg.tasks:
            split_states = {}
            for split in ("train", "test"):
                texts, labels = pair_texts(_docs(task, split, cfg))
                states = collect_states(model, tok, texts, layers=probe_layers, batch_size=cfg.batch_size,
                                        device=device, padding_side=cfg.padding_side,
                                        progress=f"probe states {task}/{split}")
                split_states[split] = (states, labels)
            (tr, ytr), (te, yte) = split_states["train"], split_states["test"]
            ctr, cte = control_labels(ytr, cfg.probe_seed), control_labels(yte, cfg.probe_seed + 1)
            for layer in probe_layers:
                row = {"task": task, "layer": layer} | train_probe(tr[layer], ytr, te[layer], yte, pcfg)
                control = train_probe(tr[layer], ctr, te[layer], cte, pcfg)  # same features, shuffled labels
                record["probes"].append(with_controls(row, control))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FEATURES_FILE
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    if record["probes"]:
        import pandas as pd

        pd.DataFrame(record["probes"]).to_csv(out / "probes.csv", index=False)
    return path


def read_feature_sets(root: Path | str) -> list[dict]:
    """Every ``features.json`` under ``root`` (one per model), validated; DataError naming the file."""
    root = Path(root)
    files = [root] if root.is_file() else sorted(root.rglob(FEATURES_FILE))
    if not files:
        raise DataError(f"no {FEATURES_FILE} under {root}: run `lm-forget features ... --out {root}` first")
    sets, roles = [], set()
    for f in files:
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{f}: not a readable features file ({exc})") from None
        missing = [k for k in ("role", "tasks", "primary_layer", "split") if k not in data]
        if missing:
            raise DataError(f"{f}: not an lm-forget features file (missing {', '.join(missing)})")
        if data["role"] in roles:
            data["role"] = f"{data['role']}_{len(roles)}"  # two folders with one role: keep both
        roles.add(data["role"])
        data["path"] = str(f)
        sets.append(data)
    return sets
