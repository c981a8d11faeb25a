#!/usr/bin/env bash
# The dependency floors are tested, not guessed: a fresh venv with the LOWEST releases pyproject.toml allows for
# every direct dependency (uv's --resolution lowest-direct; torch held at the tested 2.13.0 CPU build, the only one
# this machine has on disk), then a smoke subset of the tests. Run by .ci/run after the main test run.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-lowest
rm -rf "$venv"
python -m venv "$venv"
"$venv/bin/pip" install --quiet uv torch==2.13.0
echo "torch==2.13.0" > "$venv/constraints.txt"
links=(); [ -d /opt/wheels ] && links=(--find-links /opt/wheels)  # where this machine keeps the torch CPU wheel
VIRTUAL_ENV="$PWD/$venv" "$venv/bin/uv" pip install --quiet --resolution lowest-direct \
  --constraint "$venv/constraints.txt" "${links[@]}" -e '.[test]'
"$venv/bin/python" -m pip list 2>/dev/null | grep -iE '^(transformers|trl|peft|accelerate|datasets|huggingface.hub|scipy|numpy|pandas|lm.eval) '
LM_FORGET_DATA_DIR=../shared/data/hf "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  tests/test_train_labels.py tests/test_train_dataset.py tests/test_data_determinism.py tests/test_analysis_stats.py \
  tests/test_hub_card.py tests/test_train_device.py \
  "tests/test_train_e2e.py::test_finetune_then_forget_writes_loadable_adapters"
