"""Model cards render from hub_cards/ with ModelCardData metadata and parse back with ModelCard.load."""

from __future__ import annotations

import json

import pytest

from lm_forget.errors import ConfigError, DataError
from lm_forget.hub.card import normalize_eval_sources, read_eval_accuracies, render_card
from lm_forget.hub.cli import parse_eval_results


@pytest.fixture()
def run_folder(tmp_path):
    folder = tmp_path / "forget"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "forget_config.json").write_text(json.dumps({
        "stage": "forget", "method": "random_labels", "model": "meta-llama/Llama-2-7b-hf",
        "tasks": ["forget_boolq", "forget_cola"], "seed": 3, "data": {"seed": 0}, "num_examples": 100,
        "examples_per_task": {"forget_boolq": 100, "forget_cola": 100}, "labels_hash": "ab" * 32,
        "datasets": ["aps/super_glue", "nyu-mll/glue"], "use_lora": True,
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj"]},
        "settings": {"learning_rate": 1e-4, "num_train_epochs": 3, "seed": 3}, "versions": {"trl": "1.16.0"},
        "global_step": 42,
    }))
    return folder


def test_card_metadata_and_body_without_results(run_folder, tmp_path):
    from huggingface_hub import ModelCard

    card = render_card(run_folder, repo_id="me/llama2-forget")
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    data = loaded.data
    assert data.base_model == "meta-llama/Llama-2-7b-hf"
    assert data.library_name == "peft" and data.pipeline_tag == "text-generation"
    assert {"lm-forget", "unlearning", "stage-forget", "forget_boolq"} <= set(data.tags)
    assert data.datasets == ["aps/super_glue", "nyu-mll/glue"]
    assert data.eval_results is None  # no model-index without results
    assert "No evaluation results were attached" in loaded.text
    assert "https://huggingface.co/meta-llama/Llama-2-7b-hf" in loaded.text
    assert ("lm_eval --model hf --model_args pretrained=meta-llama/Llama-2-7b-hf,peft=me/llama2-forget "
            "--tasks forget_boolq,forget_cola") in loaded.text
    assert "| `learning_rate` | `0.0001` |" in loaded.text


def test_card_with_three_result_columns(run_folder, tmp_path):
    from huggingface_hub import ModelCard

    def results(**accs):
        return {"results": {task: {"acc,none": acc, "acc_norm,none": 0.0} for task, acc in accs.items()}}

    sources = {"pretrained": results(forget_boolq=0.6, forget_cola=0.5),
               "finetuned": results(forget_boolq=0.8, forget_cola=0.7),
               "forget": results(forget_boolq=0.61, forget_cola=0.52)}
    card = render_card(run_folder, repo_id="me/x", eval_results=sources, suite_dataset="me/lm-forget-suite")
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")  # huggingface_hub parses model-index into EvalResults
    values = {(r.dataset_type, r.dataset_config, r.dataset_split): r.metric_value for r in loaded.data.eval_results}
    assert values == {("me/lm-forget-suite", "forget_boolq", "test"): 0.61,  # model-index: this model only,
                      ("me/lm-forget-suite", "forget_cola", "test"): 0.52}  # citing the suite's Hub dataset
    assert "| Task | pretrained | finetuned | forget |" in loaded.text
    assert "| `forget_boolq` | 0.600 | 0.800 | 0.610 |" in loaded.text

    # without a Hub dataset to cite, no model-index (its dataset ids must be Hub ids), the table stays
    bare = render_card(run_folder, repo_id="me/x", eval_results=sources)
    assert bare.data.eval_results is None and "| `forget_boolq` | 0.600 | 0.800 | 0.610 |" in bare.text


def test_trl_tags_match_the_card_trl_writes(tiny_model_dir, tmp_path):
    """Our cards carry the tags TRL's SFTTrainer puts on the card it writes itself (its public create_model_card)."""
    from datasets import Dataset
    from huggingface_hub import ModelCard
    from trl import SFTConfig, SFTTrainer

    from lm_forget.hub.card import TRL_TAGS

    args = SFTConfig(output_dir=str(tmp_path / "sft"), report_to="none", max_steps=1, use_cpu=True,
                     per_device_train_batch_size=1, max_length=32)
    trainer = SFTTrainer(model=str(tiny_model_dir), args=args,
                         train_dataset=Dataset.from_list([{"text": "Once upon a time"}]))
    trainer.create_model_card()
    tags = ModelCard.load(tmp_path / "sft" / "README.md").data.tags
    assert set(TRL_TAGS) == set(tags) - {"generated_from_trainer", "hf_jobs", "unsloth"}


def test_base_model_is_always_a_hub_id(run_folder, tmp_path):
    from lm_forget.errors import ConfigError
    from lm_forget.hub.base_model import hub_base_model, require_hub_base_model

    snapshot = tmp_path / "hub" / "models--meta-llama--Llama-2-7b-hf" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    assert hub_base_model(str(snapshot)) == "meta-llama/Llama-2-7b-hf"  # HF cache layout
    named = tmp_path / "copy"
    named.mkdir()
    (named / "config.json").write_text(json.dumps({"_name_or_path": "gpt2"}))
    assert hub_base_model(str(named)) == "gpt2"  # config records its Hub id
    (named / "config.json").write_text(json.dumps({"_name_or_path": str(tmp_path / "elsewhere")}))
    assert hub_base_model(str(named)) is None
    with pytest.raises(ConfigError, match="--base-model-id ORG/NAME"):
        require_hub_base_model(str(named))
    assert require_hub_base_model(str(named), "org/model") == "org/model"
    with pytest.raises(ConfigError, match="not a Hub model id"):
        hub_base_model(None, "/abs/path")

    # a card for a run trained from a local path: base_model left out (not the path), PEFT's tags kept
    state = json.loads((run_folder / "forget_config.json").read_text())
    (run_folder / "forget_config.json").write_text(json.dumps({**state, "model": str(named)}))
    (run_folder / "README.md").write_text(f"---\nbase_model: {named}\ntags:\n- base_model:adapter:{named}\n"
                                          "- lora\n- transformers\n- custom\n---\n# PEFT card\n")
    data = render_card(run_folder, repo_id="me/x").data
    assert data.base_model is None and not [t for t in data.tags if t.startswith("base_model:")]
    assert {"lora", "transformers", "custom", "trl", "sft", "lm-forget"} <= set(data.tags)
    data = render_card(run_folder, repo_id="me/x", base_model_id="org/model").data
    assert data.base_model == "org/model" and "base_model:adapter:org/model" in data.tags


def test_eval_result_parsing(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": {"forget_cola": {"acc,none": 0.7}, "group": {"alias": "g"}}}))
    assert read_eval_accuracies(path) == {"forget_cola": 0.7}
    assert normalize_eval_sources(str(path), "relearn") == {"relearn": {"forget_cola": 0.7}}
    (tmp_path / "bad.json").write_text(json.dumps({"nope": 1}))
    with pytest.raises(DataError, match="not an lm_eval results file"):
        read_eval_accuracies(tmp_path / "bad.json")
    assert parse_eval_results(["a.json", "pretrained=b.json"]) == {"": "a.json", "pretrained": "b.json"}
    with pytest.raises(ConfigError, match="'fine-tuned' is not a phase. Did you mean 'finetuned'"):
        parse_eval_results(["fine-tuned=c.json"])  # one name per phase, as in a study's folders and CSVs
