"""End to end on the real tiny model and real data: finetune -> forget, resume, lm_eval with peft=."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lm_forget.train.labels import labels_hash

REPO_ROOT = Path(__file__).resolve().parents[1]
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle")


def _config(tiny_model_dir: Path, output_dir: Path, **overrides):
    from lm_forget.train.cli import parse_config

    argv = ["--config", str(REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml"), "--model", str(tiny_model_dir),
            "--output_dir", str(output_dir), "--tasks", "forget_cola", "--num_examples", "32",
            "--max_steps", "4", "--save_steps", "2", "--logging_steps", "1", "--disable_tqdm", "true"]
    for key, value in overrides.items():
        argv += [f"--{key}", str(value)]
    return parse_config(argv)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir, data_env):
    """A finetune run and a forget run continuing its adapter (each 4 optimizer steps)."""
    from lm_forget.train.api import train

    root = tmp_path_factory.mktemp("runs")
    ft = train(_config(tiny_model_dir, root / "ft", stage="finetune"))
    forget = train(_config(tiny_model_dir, root / "forget", stage="forget", init_adapter=root / "ft"))
    return {"root": root, "ft": ft, "forget": forget}


def _adapter_tensors(folder: Path):
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.mark.e2e
def test_finetune_then_forget_writes_loadable_adapters(runs, tiny_model_dir):
    import torch
    from huggingface_hub import ModelCard
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    for stage in ("ft", "forget"):
        result = runs[stage]
        out = result.output_dir
        assert result.global_step == 4
        for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "forget_config.json",
                     "README.md", "labels.jsonl"):
            assert (out / name).is_file(), name
        # no pickles where they could be pushed (checkpoints/ holds the Trainer's own, never pushed)
        pushed = [p for p in out.rglob("*") if p.is_file() and "checkpoints" not in p.relative_to(out).parts]
        assert not [p for p in pushed if p.suffix in PICKLE_SUFFIXES]
        state = json.loads((out / "forget_config.json").read_text())
        assert state["status"] == "done" and state["global_step"] == 4
        assert state["model"] == str(tiny_model_dir)
        assert state["labels_hash"] == result.labels_hash
        assert {"torch", "transformers", "trl", "peft"} <= set(state["versions"])
        rows = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
        assert len(rows) == 32
        assert labels_hash([{"id": r["id"]} for r in rows], [r["label"] for r in rows]) == result.labels_hash
        card = ModelCard.load(out / "README.md")
        assert card.data.library_name == "peft" and "lm-forget" in card.data.tags

    ft_state = json.loads((runs["ft"].output_dir / "forget_config.json").read_text())
    forget_state = json.loads((runs["forget"].output_dir / "forget_config.json").read_text())
    assert (ft_state["method"], forget_state["method"]) == (None, "random_labels")
    assert "label_mode" not in forget_state  # the method names the labels (one name: random_labels)
    forget_rows = [json.loads(line) for line in (runs["forget"].output_dir / "labels.jsonl").read_text().splitlines()]
    assert any(r["label"] != r["gold"] for r in forget_rows)

    # the forget adapter continues the fine-tune adapter: same keys, different values
    ft_w, fg_w = _adapter_tensors(runs["ft"].output_dir), _adapter_tensors(runs["forget"].output_dir)
    assert ft_w.keys() == fg_w.keys()
    assert any(not torch.equal(ft_w[k], fg_w[k]) for k in ft_w)

    # it loads on the base model alone and changes its outputs
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[1, 50, 60, 70, 80]])
    with torch.no_grad():
        before = base(ids).logits.clone()
        peft_model = PeftModel.from_pretrained(base, str(runs["forget"].output_dir))
        after = peft_model(ids).logits
    assert not torch.allclose(before, after)


class _Interrupt(Exception):
    pass


@pytest.mark.e2e
def test_resume_after_interruption_matches_the_uninterrupted_run(runs, tiny_model_dir):
    import torch
    from transformers import TrainerCallback

    from lm_forget.train.api import train

    class StopAtStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise _Interrupt("simulated crash after step 3")

    out = runs["root"] / "ft_interrupted"
    with pytest.raises(_Interrupt):
        train(_config(tiny_model_dir, out, stage="finetune"), callbacks=[StopAtStep3()])
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    assert not (out / "adapter_model.safetensors").exists()

    from lm_forget.errors import ConfigError

    with pytest.raises(ConfigError, match="--resume"):  # never silently restarts over checkpoints
        train(_config(tiny_model_dir, out, stage="finetune"))

    resumed = train(_config(tiny_model_dir, out, stage="finetune", resume="true"))
    reference = runs["ft"]
    assert resumed.global_step == reference.global_step == 4
    assert resumed.labels_hash == reference.labels_hash
    got, want = _adapter_tensors(out), _adapter_tensors(reference.output_dir)
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5)


def _lm_eval_loglikelihoods(tiny_model_dir: Path, model_args: str, out: Path) -> dict[int, list[float]]:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    cmd = [shutil.which("lm_eval") or "lm_eval", "--model", "hf", "--model_args", model_args,
           "--tasks", "forget_cola", "--limit", "8", "--log_samples", "--output_path", str(out),
           "--device", "cpu", "--batch_size", "8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (samples,) = out.rglob("samples_forget_cola_*.jsonl")
    lls = {}
    for line in samples.read_text().splitlines():
        record = json.loads(line)
        lls[record["doc_id"]] = [float(resp[0][0]) for resp in record["resps"]]
    assert len(lls) == 8
    return lls


@pytest.mark.e2e
def test_forget_adapter_evaluates_with_lm_eval_peft(runs, tiny_model_dir, tmp_path):
    adapter = runs["forget"].output_dir
    base = _lm_eval_loglikelihoods(tiny_model_dir, f"pretrained={tiny_model_dir}", tmp_path / "base")
    forgot = _lm_eval_loglikelihoods(tiny_model_dir, f"pretrained={tiny_model_dir},peft={adapter}",
                                     tmp_path / "forget")
    assert base.keys() == forgot.keys()
    diffs = [abs(a - b) for doc in base for a, b in zip(base[doc], forgot[doc], strict=True)]
    assert max(diffs) > 1e-3, diffs


@pytest.mark.e2e
def test_bad_inputs_fail_cleanly(runs, tiny_model_dir, tmp_path, capsys):
    from lm_forget.cli import main

    common = ["--config", str(REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml"), "--num_examples", "8"]

    def run(*argv):
        code = main(["train", *common, *argv])
        return code, capsys.readouterr().err

    code, err = run("--model", str(tmp_path / "missing"), "--tasks", "forget_cola", "--output_dir", str(tmp_path / "a"))
    assert code != 0 and "does not exist" in err
    code, err = run("--model", str(tiny_model_dir), "--tasks", "forget_nope", "--output_dir", str(tmp_path / "b"))
    assert code != 0 and "forget_nope" in err
    code, err = run("--model", str(tiny_model_dir), "--tasks", "forget_cola", "--lora_target_modules", "qkv_proj",
                    "--output_dir", str(tmp_path / "c"))
    assert code != 0 and "qkv_proj" in err and "q_proj" in err
    other = tmp_path / "other_model"
    shutil.copytree(tiny_model_dir, other)
    code, err = run("--model", str(other), "--tasks", "forget_cola", "--stage", "forget",
                    "--init_adapter", str(runs["ft"].output_dir), "--output_dir", str(tmp_path / "d"))
    assert code != 0 and "trained on base model" in err
    assert not (tmp_path / "d").exists()  # nothing written for a rejected run
    code, err = run("--model", str(tiny_model_dir), "--tasks", "forget_cola", "--config_typo", "1")
    assert code != 0


def test_cli_flags_and_yaml_parse_into_forget_config():
    from lm_forget.train.cli import parse_config

    config = parse_config([
        "--config", str(REPO_ROOT / "configs" / "train" / "forget_boolq.yaml"), "--no-lora", "--num-examples", "100",
        "--tasks", "forget_boolq,forget_cola", "--push_to_hub", "--hub_model_id", "me/x", "--seed", "3",
        "--bf16", "false", "--use_cpu", "true",  # the 7B config asks for a bf16 GPU; CLI flags override YAML
    ])
    assert config.stage == "forget" and config.use_lora is False and config.num_examples == 100
    assert config.tasks == ["forget_boolq", "forget_cola"]
    assert config.push_to_hub is True and config.hub_model_id == "me/x"
    assert config.seed == 3
    sft = config.to_sft_config()
    assert sft.push_to_hub is False and sft.output_dir.endswith("checkpoints") and sft.completion_only_loss
    assert config.model == "meta-llama/Llama-2-7b-hf" and config.init_adapter == "out/llama2-7b-ft-boolq"
    assert config.model_init_kwargs == {"dtype": "bfloat16"}


@pytest.mark.e2e
def test_full_finetuning_then_forget_from_saved_weights(tiny_model_dir, tmp_path, data_env):
    """--no-lora: the forget stage starts from the full weights the fine-tune stage saved."""
    import torch
    from safetensors.torch import load_file

    from lm_forget.train.api import train

    def config(out, **kw):
        return _config(tiny_model_dir, out, num_examples=8, max_steps=1, use_lora="false", **kw)

    ft = train(config(tmp_path / "ft", stage="finetune"))
    assert (ft.output_dir / "model.safetensors").is_file() and not (ft.output_dir / "adapter_config.json").exists()
    flip = train(config(tmp_path / "flip", stage="forget", method="flipped_labels", init_adapter=ft.output_dir))
    state = json.loads((flip.output_dir / "forget_config.json").read_text())
    assert (state["method"], state["use_lora"]) == ("flipped_labels", False)
    assert not list(flip.output_dir.glob("*.bin"))
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    w_ft = load_file(str(ft.output_dir / "model.safetensors"))
    w_flip = load_file(str(flip.output_dir / "model.safetensors"))
    key = next(k for k in w_ft if "q_proj" in k)
    assert not torch.equal(base[key], w_ft[key]) and not torch.equal(w_ft[key], w_flip[key])


@pytest.mark.e2e
def test_accelerate_launch_runs_the_module(tiny_model_dir, tmp_path, mirror_dir):
    """`accelerate launch -m lm_forget.train --config X` trains with no code of our own for the launcher."""
    accelerate = shutil.which("accelerate")
    assert accelerate, "accelerate's CLI is installed with the package"
    out = tmp_path / "acc"
    cmd = [accelerate, "launch", "--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "-m", "lm_forget.train", "--config",
           str(REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml"), "--model", str(tiny_model_dir),
           "--num_examples", "8",
           "--max_steps", "1", "--output_dir", str(out), "--disable_tqdm", "true"]
    env = {**os.environ, "LM_FORGET_DATA_DIR": str(mirror_dir)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "finetune: 1 steps on 8 examples" in proc.stdout
    assert (out / "adapter_model.safetensors").is_file()
    assert json.loads((out / "forget_config.json").read_text())["status"] == "done"


def test_output_folder_is_never_silently_reused(tmp_path):
    import torch
    from safetensors.torch import save_file
    from transformers.trainer_utils import get_last_checkpoint

    from lm_forget.errors import ConfigError
    from lm_forget.train.api import _resume_point
    from lm_forget.train.cli import parse_config
    from lm_forget.train.outputs import previous_dir, set_aside_previous

    out = tmp_path / "run"
    (out / "checkpoints" / "checkpoint-7").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-7" / "trainer_state.json").write_text("{}")  # a complete checkpoint
    save_file({"w": torch.zeros(2)}, str(out / "checkpoints" / "checkpoint-7" / "adapter_model.safetensors"))
    (out / "forget_config.json").write_text(json.dumps({"status": "done", "labels_hash": "abc"}))

    def config(*flags):
        return parse_config(["--model", "m", "--tasks", "forget_cola", "--output_dir", str(out), "--use_cpu", "true",
                             "--bf16", "false", *flags])

    with pytest.raises(ConfigError, match="checkpoint-7.*--resume.*--overwrite"):
        _resume_point(config(), get_last_checkpoint, "abc")
    with pytest.raises(ConfigError, match="labels differ"):
        _resume_point(config("--resume"), get_last_checkpoint, "other")
    assert _resume_point(config("--resume"), get_last_checkpoint, "abc").endswith("checkpoint-7")
    assert _resume_point(config("--overwrite"), get_last_checkpoint, "xyz") is None
    set_aside_previous(out)  # what train() does with --overwrite before writing: the old run moves aside whole
    assert not out.exists() and (previous_dir(out) / "checkpoints" / "checkpoint-7").is_dir()
    out.mkdir()
    (out / "forget_config.json").write_text(json.dumps({"status": "done", "labels_hash": "abc"}))
    with pytest.raises(ConfigError, match="a finished run"):
        _resume_point(config(), get_last_checkpoint, "abc")
    # stopped before its first checkpoint: nothing to lose, it starts over
    (out / "forget_config.json").write_text(json.dumps({"status": "training", "labels_hash": "abc"}))
    assert _resume_point(config(), get_last_checkpoint, "abc") is None
