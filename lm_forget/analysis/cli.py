"""``lm-forget features`` and ``lm-forget analyze``: thin argparse front-ends over :mod:`api`."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from lm_forget.analysis.options import OUTCOMES, AnalysisOptions
from lm_forget.errors import ConfigError


def _layer(text: str):
    if text == "all":
        return "all"
    parts = [int(p) for p in text.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


def features_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lm-forget features",
                                description="Hidden-state variance (and optional linear-probe) features.")
    p.add_argument("--model", required=True, help="base model path or Hub id")
    p.add_argument("--peft", default=None, help="PEFT/LoRA adapter folder applied on top of --model")
    p.add_argument("--revision", default=None, help="Hub revision of --model (branch, tag or commit)")
    p.add_argument("--tokenizer", default=None, help="tokenizer id or folder (default: the model's)")
    p.add_argument("--gguf-file", default=None, dest="gguf_file",
                   help="GGUF file in --model to load (dequantized to float; model and tokenizer)")
    p.add_argument("--data-seed", type=int, default=0, help="data seed the docs were sampled with (as in training)")
    p.add_argument("--train-size", type=int, default=1000, help="training (forget) pool size per task")
    p.add_argument("--eval-size", type=int, default=1000, help="held-out split size per task")
    p.add_argument("--tasks", required=True, help="comma-separated forget tasks, e.g. forget_boolq,forget_piqa")
    p.add_argument("--layer", type=_layer, default=-5,
                   help="hidden_states index (0 = embeddings; default -5 = fifth-from-last), "
                        "a list (--layer=-5,-1), or 'all'")
    p.add_argument("--out", required=True, type=Path, help="output folder (features.json)")
    p.add_argument("--split", default="test", choices=("train", "test"), help="docs to measure (default test)")
    p.add_argument("--role", default=None, help="name of this model in the report (default: folder name)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--padding-side", default="right", choices=("left", "right"))
    p.add_argument("--device", default=None, help="torch device (default: cuda, mps, else cpu)")
    p.add_argument("--dtype", default="auto", help="model dtype (auto: float32 on CPU, else the checkpoint's)")
    p.add_argument("--limit", type=int, default=None, help="at most this many docs per task and split")
    p.add_argument("--task-dirs", "--include-path", action="append", default=[], dest="task_dirs",
                   help="extra folder of task YAMLs, repeatable (tasks.task_dirs in a study)")
    p.add_argument("--probes", action="store_true", help="also train linear probes (train -> test split)")
    p.add_argument("--probe-layers", type=_layer, default="all")
    return p


def features_main(argv: list[str]) -> int:
    """``lm-forget features``."""
    from lm_forget.analysis.api import extract_features
    from lm_forget.data.config import DataConfig
    from lm_forget.modeling import ModelRef

    a = features_parser().parse_args(argv)
    from lm_forget.train.peft_settings import unique_names

    tasks = unique_names([a.tasks], "--tasks")
    ref = ModelRef(a.model, a.revision, a.tokenizer, a.dtype, a.peft, gguf_file=a.gguf_file)
    data = DataConfig(seed=a.data_seed, train_size=a.train_size, eval_size=a.eval_size)
    out = extract_features(ref, data=data, tasks=tasks, layer=a.layer, out=a.out, split=a.split,
                           batch_size=a.batch_size, task_dirs=a.task_dirs, device=a.device, role=a.role,
                           limit=a.limit, probes=a.probes, probe_layers=a.probe_layers,
                           padding_side=a.padding_side)
    print(f"features written to {out / 'features.json'}")
    return 0


def analyze_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lm-forget analyze",
                                description="Forgetting metrics, predictor statistics, figures and report "
                                            "from lm_eval --log_samples output folders.")
    p.add_argument("--pretrained", required=True, type=Path, help="lm_eval --output_path of the pretrained model")
    p.add_argument("--finetuned", required=True, type=Path, nargs="+",
                   help="... of the fine-tuned model (several, one per --forget folder = fine-tune seeds, pooled)")
    p.add_argument("--forget", required=True, type=Path, nargs="+",
                   help="... of the model after forgetting (several folders = several forget seeds, pooled)")
    p.add_argument("--features", type=Path, default=None, help="folder of lm-forget features outputs")
    p.add_argument("--matrix", type=Path, default=None, help="cross-task folder: matrix.csv or <trained_task>/ runs")
    p.add_argument("--control", type=Path, default=None,
                   help="lm_eval --output_path of a control forget cell (e.g. continued training on gold labels): "
                        "baseline of the example-level associations")
    p.add_argument("--out", required=True, type=Path, help="report folder")
    defaults = AnalysisOptions()
    choices = {"outcome": OUTCOMES, "correction": ("holm", "bh"), "split": ("test", "train")}
    for f in fields(AnalysisOptions):
        if f.name in ("formats", "predictors"):  # comma-separated lists
            p.add_argument(f"--{f.name}", default=",".join(getattr(defaults, f.name)),
                           help=f"{f.metadata['help']} (comma-separated)")
            continue
        default = getattr(defaults, f.name)
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(default), default=default,
                       choices=choices.get(f.name), help=f"{f.metadata['help']} (default {default})")
    return p


def analyze_main(argv: list[str]) -> int:
    """``lm-forget analyze``."""
    from lm_forget.analysis.api import analyze

    a = analyze_parser().parse_args(argv)
    kw = {f.name: getattr(a, f.name) for f in fields(AnalysisOptions)}
    for name in ("formats", "predictors"):
        kw[name] = tuple(x.strip() for x in kw[name].split(",") if x.strip())
    opts = AnalysisOptions(**kw)
    forget = a.forget[0] if len(a.forget) == 1 else a.forget
    if len(a.finetuned) not in (1, len(a.forget)):
        raise ConfigError(f"{len(a.finetuned)} --finetuned folders for {len(a.forget)} --forget folders; give one, "
                          "or one per --forget folder (in the same order).")
    finetuned = a.finetuned[0] if len(a.finetuned) == 1 else a.finetuned
    out = analyze(pretrained=a.pretrained, finetuned=finetuned, forget=forget, out=a.out,
                  features=a.features, matrix=a.matrix, control=a.control, options=opts)
    print(f"report: {out / 'index.md'} (and index.html)")
    return 0
