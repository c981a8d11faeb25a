"""The prepared GPU check (run by ``bench/gpu_check.sh`` on a machine with a CUDA GPU, <= 10 minutes).

1. The quick demo study through the real runner on CUDA: model in bfloat16, training precision left to
   ``lm_forget.train.device`` (bf16 where the GPU supports it), evaluation with lm-eval's ``hf`` backend on
   ``cuda``; prints the accuracy table, the resolved precision of every training step and the wall time.
2. The same study's forget adapters evaluated on one loaded base (adapter swapping) vs a base reload per cell,
   i.e. ``ModelPool(swap=True)`` vs ``ModelPool(swap=False)``, timed in the same process.
3. ``--only-qlora``: tiny QLoRA forget runs through ``lm_forget.train.api.train`` (4-bit nf4 + nested
   quantization, 4-bit fp4, 8 bit) on the demo model; asserts the base really loaded quantized (bitsandbytes
   layers, ``is_loaded_in_4bit``/``8bit``) and that the adapter trained (LoRA B, zero at init, is not zero).
   Needs CUDA and bitsandbytes (``pip install 'lm-forget[qlora]'``). Not run yet: no GPU was lent to the
   session that wrote it.
Writes ``gpu_check.json`` (and the run's report) under ``--out``.

    python bench/gpu_check.py --out "$OUT"
    python bench/gpu_check.py --only-qlora --out "$OUT/qlora"
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _study(out: Path, device: str, backend: str = "hf") -> dict:
    import torch
    import yaml

    from lm_forget.demo.study import demo_settings, prepare, run_config
    from lm_forget.run.config import load_run_config
    from lm_forget.run.graph import build_plan
    from lm_forget.run.runner import execute

    settings = demo_settings(quick=True)
    paths = prepare(out / "demo", settings)
    data = run_config(out / "demo", settings, paths)
    if device == "cuda":
        data["model"]["dtype"] = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    data["eval"]["device"] = device
    data["eval"]["backend"] = backend  # vllm: the same trained models (same run dir), evaluated by one engine
    for section in ("finetune", "forget"):  # let lm_forget.train.device pick bf16 / checkpointing for the GPU
        data[section] = {k: v for k, v in data[section].items() if k not in ("bf16", "use_cpu")}
    config_path = out / ("gpu_run.yaml" if backend == "hf" else f"gpu_run_{backend}.yaml")
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    plan = build_plan(load_run_config(config_path))
    started = time.perf_counter()
    summary = execute(plan)
    wall = time.perf_counter() - started
    scores = {s.name: s.done_record().get("scores") for s in plan.steps if s.stage.startswith("eval") and s.is_done()}
    precision = {}
    for step in plan.steps:
        state = Path(step.output) / "forget_config.json" if step.kind == "train" else None
        if state is not None and state.is_file():
            record = json.loads(state.read_text())
            settings_ = record.get("settings", record)
            precision[step.name] = {k: settings_.get(k) for k in ("bf16", "use_cpu", "activation_checkpointing")}
    return {"wall_s": wall, "steps_ran": summary.count("ran"), "scores": scores, "precision": precision,
            "device": torch.cuda.get_device_name(0) if device == "cuda" else device, "torch": torch.__version__}


#: the QLoRA variants checked: ForgetConfig fields -> the bitsandbytes layer the base's linears must become
QLORA_VARIANTS = {
    "nf4_nested": ({"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "use_bnb_nested_quant": True}, "Linear4bit"),
    "fp4": ({"load_in_4bit": True, "bnb_4bit_quant_type": "fp4"}, "Linear4bit"),
    "int8": ({"load_in_8bit": True}, "Linear8bitLt"),
}


def _qlora(out: Path) -> dict:
    """Tiny forget runs on a quantized demo base: the base is quantized, the adapter trains (asserted)."""
    import bitsandbytes.nn
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from lm_forget.demo.study import demo_settings, prepare
    from lm_forget.train.api import train
    from lm_forget.train.config import ForgetConfig

    settings = demo_settings(quick=True)
    paths = prepare(out / "demo", settings)
    seen: dict = {}
    quantized = (bitsandbytes.nn.Linear4bit, bitsandbytes.nn.Linear8bitLt)

    class Inspect(TrainerCallback):
        """What the trainer really holds when training starts."""

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            base = model.get_base_model() if hasattr(model, "get_base_model") else model
            seen.update(loaded_in_4bit=bool(getattr(base, "is_loaded_in_4bit", False)),
                        loaded_in_8bit=bool(getattr(base, "is_loaded_in_8bit", False)),
                        layers={kind: sum(type(m).__name__ == kind for m in base.modules())
                                for kind in ("Linear4bit", "Linear8bitLt")},
                        quantization=base.config.quantization_config.to_dict(),
                        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
                        frozen_quantized=all(not p.requires_grad for m in base.modules() if isinstance(m, quantized)
                                             for p in m.parameters(recurse=False)))

    report = {"bitsandbytes": bitsandbytes.__version__}
    for name, (fields, layer) in QLORA_VARIANTS.items():
        seen.clear()
        if torch.cuda.is_available():  # without CUDA, train() refuses the quantized base with a ConfigError
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        config = ForgetConfig(
            model=str(paths["model"]), tasks=["demo_sentiment"], stage="forget", task_dirs=[str(paths["tasks"])],
            data={"seed": settings.seed, "train_size": settings.train_size, "eval_size": settings.eval_size},
            num_examples=settings.num_examples, max_steps=8, learning_rate=3e-3, per_device_train_batch_size=8,
            lora_r=8, lora_alpha=16, save_strategy="no", report_to="none", disable_tqdm=True, logging_steps=1,
            output_dir=str(out / "qlora" / name), overwrite=True, **fields)
        result = train(config, callbacks=[Inspect()])
        tensors = load_file(str(result.output_dir / "adapter_model.safetensors"))
        lora_b = max(t.abs().max().item() for n, t in tensors.items() if "lora_B" in n)
        record = {**seen, "lora_B_max_abs": lora_b, "train_loss": result.metrics.get("train_loss"),
                  "global_step": result.global_step, "wall_s": time.perf_counter() - started,
                  "peak_gpu_mem_mb": torch.cuda.max_memory_allocated() / 2**20}
        report[name] = record
        print(name, json.dumps(record, default=str))
        assert seen["layers"][layer] > 0, f"{name}: no {layer} layer in the trained base"
        assert seen["loaded_in_4bit"] == ("load_in_4bit" in fields), name
        assert seen["loaded_in_8bit"] == ("load_in_8bit" in fields), name
        assert seen["frozen_quantized"], f"{name}: a quantized base weight is trainable"
        assert lora_b > 0, f"{name}: LoRA B is still zero: the adapter did not train"
        assert result.global_step == 8
    return report


def _swap_vs_reload(out: Path) -> dict:
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent / "bench_matrix.py"
    proc = subprocess.run([sys.executable, str(bench), "--base", "synthetic", "--no-cli", "--cells", "4"],
                          capture_output=True, text=True, timeout=300)
    return {"returncode": proc.returncode, "output": proc.stdout[-4000:], "stderr": proc.stderr[-2000:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/gpu_check")
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (to try the script here)")
    parser.add_argument("--skip-swap", action="store_true", help="skip the adapter-swap benchmark")
    parser.add_argument("--only-vllm", action="store_true",
                        help="only the study's evaluations again through eval.backend vllm (after the hf check, "
                             "same --out: training is reused) and their accuracy beside the hf ones")
    parser.add_argument("--only-qlora", action="store_true",
                        help="only the QLoRA check (4-bit / 8-bit base + LoRA forget runs; CUDA + bitsandbytes)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.only_qlora:
        result = {"qlora": _qlora(out)}
        (out / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str))
        print(json.dumps(result, indent=2, default=str))
        return 0
    if args.only_vllm:
        hf = _study(out, args.device)  # done already: every step is reused, nothing reruns
        vllm = _study(out, args.device, backend="vllm")
        diffs = {name: {m: abs(v - hf["scores"][name][task][m]) for task, ms in (scores or {}).items()
                        for m, v in ms.items()} for name, scores in vllm["scores"].items() if hf["scores"].get(name)}
        result = {"vllm": vllm, "max_abs_acc_diff_vs_hf": max((d for x in diffs.values() for d in x.values()),
                                                                  default=None)}
        (out / "gpu_check_vllm.json").write_text(json.dumps(result, indent=2, default=str))
        print(json.dumps(result, indent=2, default=str))
        return 0
    result = {"study": _study(out, args.device)}
    if not args.skip_swap:
        result["swap_vs_reload"] = _swap_vs_reload(out)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
