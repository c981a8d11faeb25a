"""Invariants of every suite task on real data: binarization is faithful to lm-eval's own scoring."""

from __future__ import annotations

import pytest

from lm_forget.data.api import load_task
from lm_forget.data.registry import SUITE, get_suite_spec
from lm_forget.data.source import instantiate_source_task, load_source_config, plan_sources, source_docs

BIG = 100_000  # keep every doc, so invariants are checked on the whole split
REQUEST_CHECKS = 150  # docs per split whose lm-eval requests are compared with the original's


@pytest.fixture(scope="module")
def forget_task_manager():
    from lm_forget.harness import task_manager

    return task_manager(include_defaults=False)


def _source(spec):
    cfg = load_source_config(spec)
    plan = plan_sources(cfg)
    task = instantiate_source_task(cfg, plan)
    return task, plan, source_docs(task, plan)


def _requests(task, doc):
    ctx = task.fewshot_context(doc=doc, num_fewshot=0)
    return [inst.arguments for inst in task.construct_requests(doc=doc, ctx=ctx, metadata=("t", 0, 1))]


def _forget_lm_task(manager, name):
    return manager.load([name])["tasks"][name]


@pytest.mark.e2e
@pytest.mark.parametrize("spec", SUITE, ids=[s.name for s in SUITE])
def test_binarized_docs_are_faithful(spec, suite_mirror, monkeypatch, forget_task_manager):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    built = load_task(spec.name, train_size=BIG, eval_size=BIG)
    source_task, plan, raw = _source(spec)
    forget_task = _forget_lm_task(forget_task_manager, spec.name)

    for split in ("train", "test"):
        docs = built.splits[split]
        assert docs, f"{spec.name} {split} is empty"
        pool = raw["eval"] if (split == "test" or plan.carve_out) else raw["train"]
        for position, doc in enumerate(docs):
            assert len(doc["choices"]) == 2 and doc["label"] in (0, 1)
            assert doc["kept"][doc["label"]] == doc["source_label"], "gold kept"
            assert len(set(doc["kept"])) == 2 and all(0 <= k < len(doc["source_choices"]) for k in doc["kept"])
            if position >= REQUEST_CHECKS:
                continue
            source_doc = pool[doc["source_index"]]
            original = _requests(source_task, source_doc)
            ours = _requests(forget_task, doc)
            if spec.rewrite == "none":
                # lm-eval scores the binarized doc exactly as it scores those two options of the original
                assert ours == [original[k] for k in doc["kept"]]
                if not spec.multi_context:
                    assert doc["prompt"] == source_task.doc_to_text(source_doc)
                    assert doc["choices"] == [doc["source_choices"][k] for k in doc["kept"]]
            else:
                assert ours[0][0] == ours[1][0] == doc["prompt"]
                assert [c for _, c in ours] == [" " + c for c in doc["choices"]]

        ids = [d["id"] for d in docs]
        assert len(ids) == len(set(ids)), "ids are unique"

    report = built.report["splits"]
    assert report["train"]["size"] == len(built.splits["train"])
    assert report["test"]["size"] == len(built.splits["test"])


@pytest.mark.parametrize("name", ["forget_openbookqa", "forget_arc_easy", "forget_siqa", "forget_commonsense_qa",
                                  "forget_mathqa"])
def test_gold_position_balanced_on_multi_option_sources(name, suite_mirror, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    built = load_task(name, train_size=BIG, eval_size=BIG)
    docs = built.splits["train"] + built.splits["test"]
    assert len(docs) >= 200
    share_first = sum(d["label"] == 0 for d in docs) / len(docs)
    assert abs(share_first - 0.5) <= 0.05, f"gold first in {share_first:.1%} of {len(docs)} docs"


def test_distractors_are_spread_over_the_original_options(suite_mirror, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    docs = load_task("forget_openbookqa", train_size=BIG, eval_size=BIG).splits["train"]
    distractor_slots = {d["kept"][1 - d["label"]] for d in docs}
    assert distractor_slots == {0, 1, 2, 3}


def test_commonsense_qa_prompt_lists_only_the_two_kept_options(suite_mirror, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    spec = get_suite_spec("forget_commonsense_qa")
    built = load_task(spec.name, train_size=BIG, eval_size=BIG)
    _, _, raw = _source(spec)
    for doc in built.splits["test"]:
        source = raw["eval"][doc["source_index"]]
        texts = source["choices"]["text"]
        lines = doc["prompt"].split("\n")
        assert lines[1] == f"A. {texts[doc['kept'][0]]}"
        assert lines[2] == f"B. {texts[doc['kept'][1]]}"
        assert not any(line.startswith(("C. ", "D. ", "E. ")) for line in lines)
        assert doc["choices"] == ["A", "B"]
        assert doc["prompt"].endswith("\nAnswer:")


def test_cb_prompt_names_only_the_two_kept_options(suite_mirror, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    docs = load_task("forget_cb", train_size=BIG, eval_size=BIG).splits["test"]
    for doc in docs:
        first, second = sorted(doc["kept"])
        names = ["True", "False", "Neither"]
        assert f"{names[first]} or {names[second]}?" in doc["prompt"]
        assert "True, False, or Neither" not in doc["prompt"]
        assert sorted(doc["choices"]) == sorted([names[first], names[second]])


def test_two_option_sources_keep_their_order(suite_mirror, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    for name in ("forget_boolq", "forget_cola", "forget_winogrande", "forget_qnli"):
        for doc in load_task(name, train_size=50, eval_size=50).splits["test"]:
            assert doc["kept"] == [0, 1] and doc["label"] == doc["source_label"]


def test_race_without_training_split_is_carved_out(suite_mirror, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    built = load_task("forget_race", train_size=BIG, eval_size=BIG)
    assert built.report["carve_out"] is True
    train_rows = {d["source_index"] for d in built.splits["train"]}
    test_rows = {d["source_index"] for d in built.splits["test"]}
    assert train_rows and test_rows and not train_rows & test_rows
    assert 0.3 < len(train_rows) / (len(train_rows) + len(test_rows)) < 0.7


def test_sizes_nest_and_are_configurable(suite_mirror, monkeypatch):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    small = load_task("forget_openbookqa", train_size=100, eval_size=50)
    large = load_task("forget_openbookqa", train_size=1000, eval_size=500)
    assert len(small.splits["train"]) == 100 and len(small.splits["test"]) == 50
    assert large.splits["train"][:100] == small.splits["train"], "the 100-example set is inside the 1,000"
    assert large.splits["test"][:50] == small.splits["test"]
