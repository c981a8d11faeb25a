"""The training set targets exactly what lm-eval scores: same token ids, loss on the answer tokens only."""

from __future__ import annotations

import pytest

from lm_forget.train.dataset import build_examples, encode_pair, to_sft_dataset


@pytest.fixture(scope="module")
def real_docs(mirror_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
        from lm_forget.data.api import load_docs

        return load_docs("forget_cola", "train")[:20] + load_docs("forget_openbookqa", "train")[:20]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _sft_config(tmp_path):
    import dataclasses

    from trl import SFTConfig

    # transformers >= 5.23 names it activation_checkpointing; older releases (our floor) gradient_checkpointing
    names = {f.name for f in dataclasses.fields(SFTConfig)}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none",
                     completion_only_loss=True, **{checkpointing: False})


def test_examples_use_scoring_pair_for_the_trained_label():
    doc = {"id": "t/train/1", "task": "t", "prompt": "Q?\nAnswer:", "choices": ["no", "yes"], "label": 1,
           "continuation": "", "target_delimiter": " "}
    (row,) = build_examples([doc], [0])
    assert (row["prompt"], row["completion"], row["gold"], row["label"]) == ("Q?\nAnswer:", " no", 1, 0)
    # multi-context (winogrande): the chosen context, then the shared continuation
    wino = {"id": "w/train/1", "task": "w", "prompt": "The trophy _ .", "choices": ["A trophy", "A case"],
            "label": 0, "continuation": "was too big.", "target_delimiter": " "}
    (row,) = build_examples([wino], [1])
    assert (row["prompt"], row["completion"]) == ("A case", " was too big.")


def test_token_ids_match_lm_eval_hflm(real_docs, tiny_model_dir, tokenizer):
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=1)
    rows = build_examples(real_docs, [0] * len(real_docs)) + build_examples(real_docs, [1] * len(real_docs))
    rows.append({"id": "x", "task": "x", "gold": 0, "label": 0, "prompt": "Trailing space: ", "completion": " a"})
    for row in rows:
        assert encode_pair(tokenizer, row["prompt"], row["completion"]) == lm._encode_pair(
            row["prompt"], row["completion"]
        ), row["id"]


def test_loss_mask_covers_exactly_the_answer_tokens(real_docs, tiny_model_dir, tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    rows = build_examples(real_docs, [int(d["label"]) for d in real_docs])
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trainer = SFTTrainer(model=model, args=_sft_config(tmp_path), train_dataset=to_sft_dataset(rows, tokenizer),
                         processing_class=tokenizer)
    prepared = trainer.train_dataset
    for row, example in zip(rows, prepared, strict=True):
        context_ids, answer_ids = encode_pair(tokenizer, row["prompt"], row["completion"])
        assert example["input_ids"] == context_ids + answer_ids  # no EOS, no re-tokenization
        assert [t for t in example["labels"] if t != -100] == answer_ids
        assert example["labels"][: len(context_ids)] == [-100] * len(context_ids)
        assert tokenizer.decode(answer_ids).strip() == row["completion"].strip()
    # through the collator: padding is never a target either
    batch = trainer.data_collator([prepared[i] for i in range(8)])
    targets = (batch["labels"] != -100).sum().item()
    expected = sum(len(encode_pair(tokenizer, r["prompt"], r["completion"])[1]) for r in rows[:8])
    assert targets == expected


def test_trl_prompt_completion_tokenization_differs_only_by_eos(real_docs, tiny_model_dir, tokenizer, tmp_path):
    """Documents why we pre-tokenize: TRL's own prompt-completion path appends an EOS target."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    rows = build_examples(real_docs[:10], [int(d["label"]) for d in real_docs[:10]])
    raw = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trainer = SFTTrainer(model=model, args=_sft_config(tmp_path), train_dataset=raw, processing_class=tokenizer)
    for row, example in zip(rows, trainer.train_dataset, strict=True):
        context_ids, answer_ids = encode_pair(tokenizer, row["prompt"], row["completion"])
        assert example["input_ids"] == context_ids + answer_ids + [tokenizer.eos_token_id]
        assert [t for t in example["labels"] if t != -100] == answer_ids + [tokenizer.eos_token_id]


def test_mixture_takes_the_first_n_docs_of_each_task(mirror_dir, monkeypatch):
    from lm_forget.data.api import load_docs
    from lm_forget.train.config import ForgetConfig
    from lm_forget.train.dataset import load_forget_docs

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    config = ForgetConfig(model="m", tasks=["forget_cola,forget_openbookqa"], num_examples=100, use_cpu=True,
                          bf16=False, output_dir="unused")
    docs = load_forget_docs(config)
    assert [d["id"] for d in docs] == [d["id"] for d in load_docs("forget_cola", "train")[:100]] + [
        d["id"] for d in load_docs("forget_openbookqa", "train")[:100]
    ]
    assert all(d["split"] == "train" for d in docs)
