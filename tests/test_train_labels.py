"""Label modes: random labels are deterministic, ~50/50 and independent of gold; flip is always wrong."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from scipy.stats import binomtest

from lm_forget.errors import ConfigError
from lm_forget.train.labels import LABEL_MODES, STAGES, assign_labels, get_label_mode, labels_hash


@pytest.fixture(scope="module")
def openbookqa_docs(mirror_dir, monkeypatch_module):
    monkeypatch_module.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    from lm_forget.data.api import load_docs

    docs = load_docs("forget_openbookqa", "train")
    assert len(docs) == 1000
    return docs


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_every_label_rule_trains_a_registered_mode():
    from lm_forget.train.methods import get_method, method_names

    rules = {m: get_method(m).label_mode for m in method_names() if get_method(m).is_label_rule}
    assert rules == {"random_labels": "random", "flipped_labels": "flip"} and set(rules.values()) <= set(LABEL_MODES)
    assert STAGES == ("finetune", "forget", "relearn")  # --stage names only the protocol stage
    with pytest.raises(ConfigError, match="unknown label mode 'nope'"):
        get_label_mode("nope")


def test_random_labels_are_balanced_and_independent_of_gold(openbookqa_docs):
    labels = assign_labels(openbookqa_docs, "random", seed=0)
    n = len(labels)
    ones = sum(labels)
    # two-sided binomial tests at 1%: ~50/50 overall, and right about half the time
    assert binomtest(ones, n, 0.5).pvalue > 0.01, ones
    differ = sum(int(d["label"]) != y for d, y in zip(openbookqa_docs, labels, strict=True))
    assert binomtest(differ, n, 0.5).pvalue > 0.01, differ
    # another seed gives another assignment (again about half the labels change)
    other = assign_labels(openbookqa_docs, "random", seed=1)
    changed = sum(a != b for a, b in zip(labels, other, strict=True))
    assert binomtest(changed, n, 0.5).pvalue > 0.01, changed
    assert labels_hash(openbookqa_docs, labels) != labels_hash(openbookqa_docs, other)


def test_random_labels_are_identical_in_another_process(openbookqa_docs):
    docs = [{"id": d["id"], "task": d["task"], "label": d["label"]} for d in openbookqa_docs[:200]]
    code = (
        "import json, sys\n"
        "from lm_forget.train.labels import assign_labels\n"
        "docs = json.load(sys.stdin)\n"
        "print(json.dumps(assign_labels(docs, 'random', seed=7)))\n"
    )
    # PYTHONHASHSEED differs per process: labels must not depend on hash()
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(docs), capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert json.loads(out.stdout) == assign_labels(docs, "random", seed=7)


def test_flip_is_always_wrong_and_true_is_gold(openbookqa_docs):
    flipped = assign_labels(openbookqa_docs, "flip", seed=0)
    assert all(y != int(d["label"]) for d, y in zip(openbookqa_docs, flipped, strict=True))
    assert assign_labels(openbookqa_docs, "true", seed=3) == [int(d["label"]) for d in openbookqa_docs]
