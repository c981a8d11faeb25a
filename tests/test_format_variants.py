"""Format variants: the same docs (same ids, same gold option) in another format, as real lm-eval tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lm_forget.data.api import load_docs
from lm_forget.data.docs import gold_pair, is_multi_context, scoring_pair
from lm_forget.data.registry import SUITE, suite_task_names
from lm_forget.data.variants import (
    INSTRUCTION,
    TAG,
    VARIANTS,
    get_variant,
    instruction_doc,
    letters_doc,
    swapped_doc,
    variant_task_name,
)
from lm_forget.data.yaml_io import load_task_yaml_merged
from lm_forget.data.yamls import FORMATS_DIR, REGENERATE, variant_files, write_suite_files
from lm_forget.errors import ConfigError
from lm_forget.formats import results_files, samples_file
from lm_forget.paths import task_configs_dir


@pytest.fixture(scope="module")
def arc_docs(data_env) -> list[dict]:
    return load_docs("forget_arc_easy", "test", eval_size=8)


def test_letters_lists_both_options_and_scores_the_gold_letter(arc_docs):
    for doc in arc_docs:
        out = letters_doc(doc)
        assert out["id"] == doc["id"] and out["label"] == doc["label"] and out["format"] == "letters"
        assert out["prompt"].endswith(f"\nA. {doc['choices'][0]}\nB. {doc['choices'][1]}\nAnswer:")
        assert out["prompt"].count("Answer:") == 1, "the source prompt's own trailing 'Answer:' is not repeated"
        assert gold_pair(out) == (out["prompt"], " " + "AB"[doc["label"]])


def test_swapped_lists_the_options_the_other_way_round_and_flips_the_gold_letter(arc_docs):
    for doc in arc_docs:
        out, letters = swapped_doc(doc), letters_doc(doc)
        assert out["id"] == doc["id"] and out["format"] == "swapped" and out["choices"] == ["A", "B"]
        assert out["prompt"].endswith(f"\nA. {doc['choices'][1]}\nB. {doc['choices'][0]}\nAnswer:")
        assert out["prompt"] != letters["prompt"] and out["label"] == 1 - letters["label"]
        assert out["kept"][out["label"]] == doc["source_label"]
        assert gold_pair(out) == (out["prompt"], " " + "BA"[doc["label"]])


def test_instruction_prefixes_the_context_only(arc_docs):
    for doc in arc_docs:
        out = instruction_doc(doc)
        assert out["prompt"] == INSTRUCTION + doc["prompt"] and out["choices"] == doc["choices"]
        assert gold_pair(out)[1] == gold_pair(doc)[1]


def test_multi_context_docs_keep_their_sentences_in_every_variant():
    """winogrande-style doc (choices are contexts, one shared continuation), in the suite's real field layout."""
    doc = {"id": "forget_winogrande/test/abc", "prompt": "src", "choices": ["Ann gave Bea", "Bea gave Ann"],
           "label": 1, "continuation": "the book.", "target_delimiter": " ", "kept": [0, 1], "source_label": 1}
    assert is_multi_context(doc)
    letters = letters_doc(doc)
    assert not is_multi_context(letters)
    assert letters["prompt"] == "A. Ann gave Bea the book.\nB. Bea gave Ann the book.\nAnswer:"
    assert gold_pair(letters) == (letters["prompt"], " B")
    assert swapped_doc(doc)["prompt"] == "A. Bea gave Ann the book.\nB. Ann gave Bea the book.\nAnswer:"
    assert gold_pair(swapped_doc(doc)) == (swapped_doc(doc)["prompt"], " A")
    assert scoring_pair(instruction_doc(doc), 0) == (INSTRUCTION + "Ann gave Bea", " the book.")


def test_unknown_variant_is_a_config_error_naming_the_known_ones():
    with pytest.raises(ConfigError, match="letters, swapped, instruction"):
        get_variant("paraphrase")


def test_shipped_variant_yamls_are_what_the_registry_generates(tmp_path):
    folder = task_configs_dir() / FORMATS_DIR
    shipped = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("fmt_*.yaml")}
    assert shipped == variant_files(), f"task_configs/formats/ differs: run `{REGENERATE}` and commit the result"
    assert len(shipped) == len(VARIANTS) * len(SUITE)
    (tmp_path / FORMATS_DIR).mkdir()
    (tmp_path / FORMATS_DIR / "fmt_gone_forget_x.yaml").write_text("task: fmt_gone_forget_x\n")
    write_suite_files(tmp_path)
    assert not (tmp_path / FORMATS_DIR / "fmt_gone_forget_x.yaml").exists()
    assert write_suite_files(tmp_path) == [], "a second run changes nothing"


@pytest.mark.parametrize("variant", [v.name for v in VARIANTS])
@pytest.mark.parametrize("task", ["forget_arc_easy", "forget_winogrande"])
def test_each_variant_yaml_is_its_suite_task_with_the_transform_and_its_own_tag(variant, task):
    name = variant_task_name(variant, task)
    config = load_task_yaml_merged(task_configs_dir() / FORMATS_DIR / f"{name}.yaml")
    suite = load_task_yaml_merged(task_configs_dir() / f"{task}.yaml")
    assert config["task"] == name and config["tag"] == [TAG]
    assert config["process_docs"] == f"lm_forget.data.variants.{variant}"
    assert config["dataset_kwargs"] == suite["dataset_kwargs"] and config["custom_dataset"] == suite["custom_dataset"]
    assert config["doc_to_text"] == ("label" if task == "forget_winogrande" and variant == "instruction"
                                     else "{{prompt}}")


def test_variant_names_and_tag_never_match_the_suite_wildcard():
    from lm_forget.harness import task_manager

    manager = task_manager(include_defaults=False)
    variants = {variant_task_name(v.name, t) for v in VARIANTS for t in suite_task_names()}
    assert variants | {TAG} <= set(manager.all_tasks)
    assert sorted(manager.match_tasks(["forget_*"])) == sorted(suite_task_names())
    assert sorted(manager.match_tasks([TAG])) == [TAG]


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory, suite_mirror, tiny_model_dir) -> Path:
    """The real lm_eval CLI on stories260K: two suite tasks and variants of them, on forget-set docs."""
    out = tmp_path_factory.mktemp("variants")
    tasks = ["forget_winogrande", "forget_arc_easy",
             *(variant_task_name(v.name, "forget_winogrande") for v in VARIANTS),
             variant_task_name("swapped", "forget_arc_easy"), variant_task_name("letters", "forget_arc_easy")]
    env = {**os.environ, "LM_FORGET_DATA_DIR": str(suite_mirror), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args",
                             f"pretrained={tiny_model_dir},dtype=float32", "--tasks", ",".join(tasks),
                             "--metadata", json.dumps({"eval_on": "train"}), "--limit", "4", "--device", "cpu",
                             "--batch_size", "8", "--output_path", str(out), "--log_samples"],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _samples(out: Path, task: str) -> list[dict]:
    assert results_files(out), f"no results under {out}"
    path = samples_file(results_files(out)[-1], task)
    assert path.is_file(), f"no samples for {task} under {out}"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.e2e
@pytest.mark.parametrize("task", ["forget_winogrande", "forget_arc_easy"])
def test_lm_eval_scores_each_variant_on_the_same_forget_set_docs(variant_run, task):
    suite = {s["doc"]["id"]: s for s in _samples(variant_run, task)}
    assert len(suite) == 4 and all(i.startswith(f"{task}/train/") for i in suite)
    for variant in ("letters", "swapped") if task == "forget_arc_easy" else [v.name for v in VARIANTS]:
        samples = _samples(variant_run, variant_task_name(variant, task))
        assert [s["doc"]["id"] for s in samples] == list(suite), "same docs, same order"
        for sample in samples:
            doc, original = sample["doc"], suite[sample["doc"]["id"]]["doc"]
            pairs = [(arg["arg_0"], arg["arg_1"]) for arg in sample["arguments"].values()]
            assert doc["format"] == variant and pairs == [scoring_pair(doc, 0), scoring_pair(doc, 1)]
            context, continuation = gold_pair(original)
            assert gold_pair(doc) == {"letters": (doc["prompt"], " " + "AB"[original["label"]]),
                                      "swapped": (doc["prompt"], " " + "BA"[original["label"]]),
                                      "instruction": (INSTRUCTION + context, continuation)}[variant]
    if task == "forget_winogrande":  # instruction keeps the shared continuation: both contexts scored against it
        sample = _samples(variant_run, variant_task_name("instruction", task))[0]
        assert [a["arg_1"] for a in sample["arguments"].values()] == [" " + sample["doc"]["continuation"]] * 2
