"""Membership-inference scores (open-unlearning's LOSS, zlib, min-k%, min-k%++) and their AUC, checked by hand."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from lm_forget.analysis.mia import auc, auc_interval, auc_rows, text_scores, token_scores


def test_scores_match_a_hand_computation():
    # two-token vocabulary at every position: p = (0.25, 0.75); the text's tokens drew these log-probabilities
    p = np.array([0.25, 0.75])
    mu = float((p * np.log(p)).sum())
    var = float((p * np.log(p) ** 2).sum()) - mu**2
    logprobs = [math.log(0.75), math.log(0.25), math.log(0.75), math.log(0.25), math.log(0.75)]
    text = "the cat sat on the mat"
    got = token_scores(logprobs, [mu] * 5, [var] * 5, text, k=0.4)
    loss = -(3 * math.log(0.75) + 2 * math.log(0.25)) / 5
    assert got["loss"] == pytest.approx(loss)
    assert got["zlib"] == pytest.approx(loss / len(zlib.compress(text.encode("utf-8"))))
    # k = 0.4 of 5 tokens: the 2 least likely, both log 0.25
    assert got["min_k"] == pytest.approx(-math.log(0.25))
    assert got["min_k_plus_plus"] == pytest.approx(-(math.log(0.25) - mu) / math.sqrt(var))
    # k below one token still scores the least likely token (open-unlearning: max(1, int(len * k)))
    assert token_scores(logprobs, [mu] * 5, [var] * 5, text, k=0.01)["min_k"] == pytest.approx(-math.log(0.25))
    # a flat next-token distribution has zero variance: open-unlearning's floor 1e-6 keeps it finite
    assert math.isfinite(token_scores([math.log(0.5)], [math.log(0.5)], [0.0], "a")["min_k_plus_plus"])
    with pytest.raises(ValueError, match="no scored token"):
        token_scores([], [], [], "")


def test_auc_follows_open_unlearning_convention_and_its_interval_covers_it():
    forget = [0.5, 0.7, 0.9, 1.0]  # lower loss: looks like training data
    held_out = [1.5, 1.2, 0.95, 2.0]
    # pairs (held-out > forget): 4 + 4 + 3 + 4 = 15 of 16
    assert auc(forget, held_out) == pytest.approx(15 / 16)
    assert auc(held_out, forget) == pytest.approx(1 / 16)
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 60), rng.normal(0.5, 1, 80)
    row = auc_interval(a, b, rng=np.random.default_rng(1))
    assert row["auc_lo"] < row["auc"] < row["auc_hi"]
    assert row["auc"] == pytest.approx(auc(a, b))
    assert 0.55 < row["auc"] < 0.8
    assert math.isnan(auc_interval([1.0], [2.0, 3.0])["auc"])
    rows = [{"member": 1, "loss": x, "zlib": x, "min_k": x, "min_k_plus_plus": x} for x in a] + [
        {"member": 0, "loss": x, "zlib": x, "min_k": x, "min_k_plus_plus": x} for x in b]
    table = auc_rows(rows, seed_parts=("cell",))
    assert table["loss"]["auc"] == pytest.approx(row["auc"]) and table["loss"]["forget_docs"] == 60
    assert table == auc_rows(rows, seed_parts=("cell",))  # deterministic: the generator is a stable hash


def test_text_scores_are_lm_evals_rolling_loglikelihood_on_a_real_model(tiny_model_dir):
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from lm_forget.modeling import ModelRef, load_model, load_tokenizer

    ref = ModelRef(str(tiny_model_dir), dtype="float32")
    lm = HFLM(pretrained=load_model(ref), tokenizer=load_tokenizer(ref), batch_size=1)
    texts = ["Once upon a time there was a dog. Question: is it a dog? Answer: yes",
             "The girl ran to the park and saw a big red ball.", "no"]
    scores = text_scores(lm, texts, k=0.2)
    rolling = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (t,), 0) for t in texts],
                                       disable_tqdm=True)
    for text, row, ll in zip(texts, scores, rolling, strict=True):
        n_tokens = len(lm.tok_encode(text))
        assert -row["loss"] * n_tokens == pytest.approx(ll, abs=1e-3)
        # min-k% by hand from the model's logits
        tokens = [lm.prefix_token_id, *lm.tok_encode(text)]
        with torch.no_grad():
            logp = torch.log_softmax(lm._model_call(torch.tensor([tokens]))[0, :-1].float(), -1)
        lp = logp.gather(-1, torch.tensor(tokens[1:])[:, None])[:, 0].numpy()
        assert row["min_k"] == pytest.approx(-np.sort(lp)[:max(1, int(len(lp) * 0.2))].mean(), rel=1e-5)
        assert all(math.isfinite(row[name]) for name in ("zlib", "min_k_plus_plus"))


@pytest.mark.e2e
def test_planted_a_model_that_never_saw_the_forget_set_scores_auc_one_half_on_sst2(tiny_model_dir, mirror_dir,
                                                                                   monkeypatch):
    """SST-2's train split is phrases, its validation split sentences: against held-out docs even the pretrained
    model 'detects' the forget set; against same-split non-members (lm_forget.run.mia_docs) it cannot."""
    from lm_eval.models.huggingface import HFLM

    from lm_forget.data.api import load_docs
    from lm_forget.data.config import DataConfig
    from lm_forget.data.docs import gold_pair
    from lm_forget.modeling import ModelRef, load_model, load_tokenizer
    from lm_forget.run.mia_docs import same_split_docs

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    data, n = DataConfig(seed=0, train_size=128, eval_size=150), 128
    members = load_docs("forget_sst2", "train", data=DataConfig(seed=0, train_size=2 * n, eval_size=150))[:n]
    assert members == load_docs("forget_sst2", "train", data=data)  # pools nest: the study's own forget set
    same = same_split_docs("forget_sst2", n, reach=data.train_size, task_dirs=[], data=data)
    held = load_docs("forget_sst2", "test", data=data)
    assert len(same) == n and not {d["id"] for d in same} & {d["id"] for d in members}
    ref = ModelRef(str(tiny_model_dir), dtype="float32")
    lm = HFLM(pretrained=load_model(ref), tokenizer=load_tokenizer(ref), batch_size=1)

    def scored(docs: list[dict], member: int) -> list[dict]:
        return [{**s, "member": member} for s in text_scores(lm, ["".join(gold_pair(d)) for d in docs])]

    forget = scored(members, 1)
    for name, table in (("same_split", auc_rows(forget + scored(same, 0), seed_parts=("sst2", "same_split"))),
                        ("held_out", auc_rows(forget + scored(held, 0), seed_parts=("sst2", "held_out")))):
        inside = {s: table[s]["auc_lo"] <= 0.5 <= table[s]["auc_hi"] for s in table}
        if name == "same_split":  # the planted check holds for every score
            assert all(inside.values()), {s: table[s] for s in table}
        else:  # and it fails against held-out docs, which differ in kind (LOSS 0.349 [0.287, 0.413] at seed 0)
            assert not inside["loss"] and not inside["zlib"], {s: table[s] for s in table}
