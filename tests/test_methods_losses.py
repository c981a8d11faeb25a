"""Each method's loss equals a hand computation on a two-doc batch (real stories260K, real forget_cola docs).

The hand side scores every (context, continuation) with its own unpadded forward pass, as lm-eval does, and
applies the paper's formula in plain Python floats; the trainer side goes through the collator (one padded
batch with retain docs), ``compute_loss`` and, for npo/rmu, the reference computed at construction.
"""

from __future__ import annotations

import math

import pytest

from lm_forget.data.docs import scoring_pair
from lm_forget.train.dataset import encode_pair

pytestmark = pytest.mark.usefixtures("data_env")


@pytest.fixture(scope="module")
def setup(tiny_model_dir, data_env):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lm_forget.data.api import load_docs

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float64)
    pool = load_docs("forget_cola", "train")
    return {"model": model, "tokenizer": tokenizer, "forget": pool[:2], "retain": pool[10:12]}


def _trainer(setup, tmp_path, method_name: str, retain_weight: float, **params):
    from trl import SFTConfig

    from lm_forget.train.methods import get_method
    from lm_forget.train.methods.data import MethodCollator, method_dataset, method_rows

    method = get_method(method_name)
    tok = setup["tokenizer"]
    rows = method_rows(setup["forget"], setup["retain"], tok, both_choices=method.both_choices)
    args = SFTConfig(output_dir=str(tmp_path), remove_unused_columns=False, use_cpu=True, report_to="none",
                     dataset_kwargs={"skip_prepare_dataset": True},
                     per_device_eval_batch_size=1, seed=3)
    collator = MethodCollator(tok.eos_token_id)
    trainer = method.trainer(model=setup["model"], args=args, train_dataset=method_dataset(rows),
                             processing_class=tok, data_collator=collator,
                             method_params=method.parse_params(params), retain_weight=retain_weight)
    return trainer, collator(rows)


def _loss(trainer, batch) -> float:
    import torch

    with torch.no_grad():
        return float(trainer.compute_loss(trainer.model, batch))


def _score(model, tok, doc, choice) -> tuple[float, int]:
    """(summed log-prob of the continuation, its token count): one unpadded forward pass."""
    import torch

    ctx, cont = encode_pair(tok, *scoring_pair(doc, choice))
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0], dim=-1)
    return sum(float(logp[len(ctx) - 1 + i, t]) for i, t in enumerate(cont)), len(cont)


def _gold(setup, docs):
    return [_score(setup["model"], setup["tokenizer"], d, int(d["label"])) for d in docs]


def _perturb(model, seed: int = 0) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


@pytest.fixture
def fresh(setup, tiny_model_dir):
    """A copy of ``setup`` with its own model (npo/rmu perturb it after the reference is taken)."""
    import torch
    from transformers import AutoModelForCausalLM

    return {**setup, "model": AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float64)}


def test_grad_ascent_and_grad_diff(setup, tmp_path):
    forget, retain = _gold(setup, setup["forget"]), _gold(setup, setup["retain"])
    trainer, batch = _trainer(setup, tmp_path, "grad_ascent", 0.0)
    assert _loss(trainer, batch) == pytest.approx((forget[0][0] + forget[1][0]) / 2, rel=1e-9)
    trainer, batch = _trainer(setup, tmp_path, "grad_diff", 0.7)
    expected = (forget[0][0] + forget[1][0]) / 2 + 0.7 * -(retain[0][0] + retain[1][0]) / 2
    assert _loss(trainer, batch) == pytest.approx(expected, rel=1e-9)


def test_uniform_is_kl_from_uniform_over_the_two_choices(setup, tmp_path):
    trainer, batch = _trainer(setup, tmp_path, "uniform", 0.0)
    expected = 0.0
    for doc in setup["forget"]:
        s0, s1 = (_score(setup["model"], setup["tokenizer"], doc, c)[0] for c in (0, 1))
        p0 = math.exp(s0) / (math.exp(s0) + math.exp(s1))
        expected += (0.5 * math.log(0.5 / p0) + 0.5 * math.log(0.5 / (1 - p0))) / 2
    assert _loss(trainer, batch) == pytest.approx(expected, rel=1e-9)
    assert expected > 0


def test_npo_against_the_starting_model(fresh, tmp_path):
    ref = _gold(fresh, fresh["forget"])
    trainer, batch = _trainer(fresh, tmp_path, "npo", 0.5, beta=0.3)
    # at the start pi_theta = pi_ref: the loss is (2/beta) log 2 (+ the retain NLL)
    retain0 = _gold(fresh, fresh["retain"])
    start = 2 / 0.3 * math.log(2) + 0.5 * -(retain0[0][0] + retain0[1][0]) / 2
    assert _loss(trainer, batch) == pytest.approx(start, rel=1e-9)
    _perturb(trainer.model)
    now, retain = _gold(fresh, fresh["forget"]), _gold(fresh, fresh["retain"])
    expected = sum(2 / 0.3 * math.log(1 + math.exp(0.3 * (n[0] - r[0]))) for n, r in zip(now, ref, strict=True)) / 2
    expected += 0.5 * -(retain[0][0] + retain[1][0]) / 2
    assert now[0][0] != pytest.approx(ref[0][0], abs=1e-3)  # the perturbation moved the log-probs
    assert _loss(trainer, batch) == pytest.approx(expected, rel=1e-9)


def test_simnpo_is_length_normalized_and_reference_free(setup, tmp_path):
    forget = _gold(setup, setup["forget"])
    trainer, batch = _trainer(setup, tmp_path, "simnpo", 0.0, beta=2.0, gamma=0.5)
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    expected = sum(-(2 / 2.0) * math.log(sig(-(2.0 / n) * lp - 0.5)) for lp, n in forget) / 2
    assert _loss(trainer, batch) == pytest.approx(expected, rel=1e-9)


def test_rmu_steers_forget_states_and_anchors_retain_states(fresh, tmp_path):
    import torch

    from lm_forget.train.methods.rmu import control_vector

    model, tok = fresh["model"], fresh["tokenizer"]

    def states(doc, layer):
        ctx, cont = encode_pair(tok, *scoring_pair(doc, int(doc["label"])))
        with torch.no_grad():
            return model(torch.tensor([ctx + cont]), output_hidden_states=True).hidden_states[layer + 1][0]

    frozen = [states(d, 2) for d in fresh["retain"]]
    trainer, batch = _trainer(fresh, tmp_path, "rmu", 10.0, layer=2, steering_coeff=4.0)
    trained = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trained and all(".mlp." in n and any(f"layers.{i}." in n for i in (0, 1, 2)) for n in trained)
    assert not any("layers.3." in n or "embed" in n or "self_attn" in n for n in trained)
    control = control_vector(64, 4.0, 3)
    assert float(control.norm()) == pytest.approx(4.0, rel=1e-6) and bool((control >= 0).all())
    assert torch.equal(control, control_vector(64, 4.0, 3)) and not torch.equal(control, control_vector(64, 4.0, 4))
    _perturb(trainer.model)
    forget_h = torch.cat([states(d, 2) for d in fresh["forget"]])
    retain_h = torch.cat([states(d, 2) for d in fresh["retain"]])
    expected = float(((forget_h - control.double()) ** 2).mean())
    expected += 10.0 * float(((retain_h - torch.cat(frozen)) ** 2).mean())
    assert _loss(trainer, batch) == pytest.approx(expected, rel=1e-5)


def test_registry_names_and_bad_arguments():
    from lm_forget.errors import ConfigError
    from lm_forget.train.config import ForgetConfig
    from lm_forget.train.methods import get_method, method_names

    def _cfg(**kwargs):
        return ForgetConfig(use_cpu=True, bf16=False, **kwargs)

    assert method_names() == ["random_labels", "flipped_labels", "uniform", "grad_ascent", "grad_diff", "npo",
                              "simnpo", "rmu"]
    assert _cfg(stage="forget").forget_method.name == "random_labels"  # the paper's is the default
    assert _cfg(stage="forget").effective_label_mode == "random"
    assert _cfg(stage="forget", method="flipped_labels").effective_label_mode == "flip"
    assert _cfg(stage="relearn").effective_label_mode == _cfg().effective_label_mode == "true"
    with pytest.raises(ConfigError, match="unknown forgetting method 'flip'.*Known: random_labels, flipped_labels"):
        get_method("flip")  # stage names are not method names
    with pytest.raises(ConfigError, match="unknown --stage 'flip'.*--stage forget --method flipped_labels"):
        _cfg(stage="flip")
    with pytest.raises(ConfigError, match="use it with --stage forget, not relearn"):
        _cfg(stage="relearn", method="npo")
    npo = _cfg(stage="forget", method="npo", method_args='{"beta": 0.2}')
    assert npo.effective_label_mode == "true" and npo.forget_method.parse_params(npo.method_args).beta == 0.2
    with pytest.raises(ConfigError, match="unknown forgetting method 'nop'.*npo"):
        _cfg(stage="forget", method="nop")
    with pytest.raises(ConfigError, match=r"\['bta'\] are not parameters of method 'npo'.*beta"):
        _cfg(stage="forget", method="npo", method_args={"bta": 1})
    with pytest.raises(ConfigError, match="beta must be > 0"):
        _cfg(stage="forget", method="simnpo", method_args={"beta": 0})
    with pytest.raises(ConfigError, match="not finetune"):
        _cfg(stage="finetune", method="npo")


def test_a_new_method_is_one_module_in_the_methods_package(tmp_path, monkeypatch):
    """A module placed beside the built-in methods registers itself: found by the registry, listed after the
    built-ins, with nothing else edited."""
    import lm_forget.train.methods as package
    from lm_forget.train.methods import get_method, method_names
    from lm_forget.train.methods.registry import METHODS

    (tmp_path / "planted_rule.py").write_text(
        "from lm_forget.train.methods.registry import Method, register_method\n"
        "register_method(Method(name='planted_rule', summary='planted', label_mode='flip'))\n")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    try:
        names = method_names()
        assert names[-1] == "planted_rule" and names[:2] == ["random_labels", "flipped_labels"]
        assert get_method("planted_rule").is_label_rule
    finally:
        METHODS.pop("planted_rule", None)
        import sys

        sys.modules.pop("lm_forget.train.methods.planted_rule", None)
