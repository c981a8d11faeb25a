"""Hub round trip with the real huggingface_hub client against the loopback Hub server (tests/hub_server.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hub_server import HubServer

from lm_forget.errors import HubError

TOKEN = "hf_lmforgetTESTtoken0123456789secret"
DOCS = [
    {"id": f"forget_toy/train/{i}", "task": "forget_toy", "split": "train", "prompt": f"Is {i} even?\nAnswer:",
     "choices": ["no", "yes"], "label": int(i % 2 == 0), "continuation": "", "target_delimiter": " "}
    for i in range(8)
]


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    """A running loopback Hub, the client pointed at it, and HF_TOKEN set (no token file anywhere)."""
    from huggingface_hub import constants

    server = HubServer({TOKEN: "alice"}).start()
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    template = server.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf_home" / "stored_tokens"))
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr("lm_forget.hub.push.RETRY_WAIT_S", 0.0)
    # the client's own backoff (1, 2, 4, 8, 8 s between tries) would make the failure tests slow
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", lambda seconds: None)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, tiny_model_dir):
    """A real (1-step) forget run whose --push-to-hub fails for lack of a token: the adapter must stay."""
    from huggingface_hub import constants

    from lm_forget.train.api import train
    from lm_forget.train.cli import parse_config

    out = tmp_path_factory.mktemp("hub") / "forget"
    config = parse_config([
        "--config", str(Path(__file__).resolve().parents[1] / "configs" / "train_tiny_cpu.yaml"),
        "--model", str(tiny_model_dir), "--stage", "forget", "--tasks", "forget_toy", "--max_steps", "1",
        "--output_dir", str(out), "--push-to-hub", "alice/tiny-forget", "--disable_tqdm", "true",
    ])
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("HF_TOKEN", raising=False)
        mp.setattr(constants, "HF_TOKEN_PATH", str(out.parent / "no_token"))
        mp.setattr(constants, "HF_STORED_TOKENS_PATH", str(out.parent / "no_tokens"))
        with pytest.raises(HubError) as info:
            train(config, docs=DOCS)
    return out, str(info.value)


def test_push_without_token_keeps_the_adapter_and_says_how_to_push_later(run_folder):
    out, message = run_folder
    assert "no Hugging Face token" in message and f"lm-forget push {out} alice/tiny-forget" in message
    for name in ("adapter_model.safetensors", "adapter_config.json", "forget_config.json", "README.md"):
        assert (out / name).is_file()


def _results(path: Path, acc: float) -> Path:
    path.write_text(json.dumps({"results": {"forget_toy": {"alias": "forget_toy", "acc,none": acc,
                                                            "acc_stderr,none": 0.1}}}))
    return path


def test_push_round_trip(hub, run_folder, tiny_model_dir, tmp_path, caplog, capsys):
    import torch
    from huggingface_hub import ModelCard, snapshot_download
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from lm_forget.cli import main

    caplog.set_level(logging.DEBUG)
    out, _ = run_folder
    argv = ["push", str(out), "alice/tiny-forget", "--eval-results", str(_results(tmp_path / "own.json", 0.55)),
            "--eval-results", f"pretrained={_results(tmp_path / 'pre.json', 0.5)}",
            "--eval-results", f"fine-tuned={_results(tmp_path / 'ft.json', 0.75)}"]
    assert main(argv) == 0
    stored = hub.files("alice/tiny-forget")
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md", "forget_config.json",
            "tokenizer.json", "labels.jsonl"} <= set(stored)
    assert not [p for p in stored if p.endswith((".bin", ".pt", ".pth", ".pkl")) or p.startswith("checkpoints/")]

    snapshot = Path(snapshot_download("alice/tiny-forget", cache_dir=str(tmp_path / "cache")))
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, str(snapshot))
    assert any("lora_A" in name for name, _ in model.named_parameters())
    local = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert local and all(torch.isfinite(v).all() for v in local.values())

    card = ModelCard.load(snapshot / "README.md")
    data = card.data
    assert data.base_model == str(tiny_model_dir)
    assert data.library_name == "peft" and data.pipeline_tag == "text-generation"
    assert {"lm-forget", "unlearning", "forget_toy"} <= set(data.tags)
    (result,) = data.eval_results
    assert (result.dataset_type, result.metric_type, result.metric_value) == ("forget_toy", "accuracy", 0.55)
    assert "| `forget_toy` | 0.550 | 0.500 | 0.750 |" in card.text
    assert f"pretrained={tiny_model_dir},peft=alice/tiny-forget" in card.text

    # the token is in no file written (run folder, download cache, Hub copy) and in no log or output
    written = [p for p in tmp_path.rglob("*") if p.is_file()] + [p for p in out.rglob("*") if p.is_file()]
    for path in written:
        assert TOKEN.encode() not in path.read_bytes(), path
    assert all(TOKEN.encode() not in content for content in stored.values())
    captured = capsys.readouterr()
    assert TOKEN not in caplog.text and TOKEN not in captured.out + captured.err


def test_private_push_to_a_branch(hub, run_folder):
    from lm_forget.hub.push import push_folder

    out, _ = run_folder
    url = push_folder(out, "alice/private-forget", private=True, revision="seed-0", commit_message="seed 0")
    repo = hub.state.repos["alice/private-forget"]
    assert repo.private and "seed-0" in url or repo.branches["seed-0"] in url
    assert "adapter_model.safetensors" in hub.files("alice/private-forget", "seed-0")
    assert hub.files("alice/private-forget", "main") == {}  # main untouched
    assert repo.commits[repo.branches["seed-0"]]["message"] == "seed 0"


def test_interrupted_upload_is_retried_and_never_half_written(hub, run_folder):
    from lm_forget.hub.push import push_folder

    out, _ = run_folder
    hub.state.fail_commits = 7  # more failures than the client's own retries: our retry finishes the job
    push_folder(out, "alice/flaky")
    assert hub.commit_count("alice/flaky") == 2  # initial + exactly one upload
    assert hub.state.fail_commits == 0
    before = hub.state.repos["alice/flaky"].branches["main"]

    hub.state.fail_commits = 99  # the Hub stays down: a clear error, main unchanged
    (out / "extra.txt").write_text("new file\n")
    try:
        with pytest.raises(HubError, match="HTTP 500"):
            push_folder(out, "alice/flaky")
    finally:
        (out / "extra.txt").unlink()
    assert hub.state.repos["alice/flaky"].branches["main"] == before
    assert "extra.txt" not in hub.files("alice/flaky")


def test_push_to_a_repo_you_cannot_write(hub, run_folder, capsys):
    from lm_forget.cli import main

    out, _ = run_folder
    assert main(["push", str(out), "bob/not-mine"]) != 0
    err = capsys.readouterr().err
    assert "403" in err and "write access" in err and TOKEN not in err
    assert "bob/not-mine" not in hub.state.repos
    assert (out / "adapter_model.safetensors").is_file()
