#!/usr/bin/env bash
# The prepared GPU check for sessions lent a GPU (one script, <= 10 minutes on one GPU; docs/benchmarks.md).
#   1. the quick demo study through the runner on CUDA (bf16), 2. adapter swapping vs reloading on the GPU,
#   3. the vLLM backend, if vllm imports there. 4. QLoRA (4-bit / 8-bit base + LoRA forget runs), if bitsandbytes
#   imports there: it travels as a wheel too (its wheel is manylinux_2_24: add --platform manylinux_2_24_x86_64
#   to the device README's pip download command, e.g. ... -d .whl bitsandbytes==0.50.2).
# The GPU machine has no package index: lm-eval, trl, datasets (and their pure-Python needs) travel as wheels in
# .whl/ (see the device tool's README); this script installs them into /tmp/site first when .whl/ exists.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
timeout 420 python3 bench/gpu_check.py --out "$OUT" 2>&1 | tee "$OUT/gpu_check.log"
if python3 -c "import vllm" 2>/dev/null; then
  timeout 180 python3 bench/gpu_check.py --only-vllm --out "$OUT" 2>&1 | tee "$OUT/vllm_study.log"  # one engine, runner
  timeout 120 python3 -m lm_forget eval --model vllm --model_args "pretrained=$OUT/demo/$(ls "$OUT/demo" | grep '^model-' | head -1),enable_lora=True,max_lora_rank=64,enable_prefix_caching=True" \
      --tasks demo_sentiment --include_path "$OUT/demo/$(ls "$OUT/demo" | grep '^tasks-' | head -1)" --limit 16 2>&1 | tee "$OUT/vllm.log"
else
  echo "vllm not importable here: vLLM backend not checked" | tee "$OUT/vllm.log"
fi
if python3 -c "import bitsandbytes" 2>/dev/null; then
  timeout 240 python3 bench/gpu_check.py --only-qlora --out "$OUT/qlora" 2>&1 | tee "$OUT/qlora.log"
else
  echo "bitsandbytes not importable here: QLoRA not checked" | tee "$OUT/qlora.log"
fi
