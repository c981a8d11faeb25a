"""Hub round trip with the real huggingface_hub client against the loopback Hub server (tests/hub_server.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hub_server import serve

from lm_forget.errors import ConfigError, HubError
from lm_forget.hub.files import is_allowed

TOKEN = "hf_lmforgetTESTtoken0123456789secret"
#: stories260K is a local folder that records no Hub id: the card's base_model comes from --base-model-id
BASE_ID = "lm-forget-tests/stories260K"
SUITE = "alice/lm-forget-suite"
DOCS = [
    {"id": f"forget_toy/train/{i}", "task": "forget_toy", "split": "train", "prompt": f"Is {i} even?\nAnswer:",
     "choices": ["no", "yes"], "label": int(i % 2 == 0), "continuation": "", "target_delimiter": " "}
    for i in range(8)
]


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    """A running loopback Hub, the client pointed at it, and HF_TOKEN set (no token file anywhere)."""
    server = serve(monkeypatch, tmp_path, {TOKEN: "alice"}, TOKEN)
    monkeypatch.setattr("lm_forget.hub.push.RETRY_WAIT_S", 0.0)
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
        "--config", str(Path(__file__).resolve().parents[1] / "configs" / "train" / "train_tiny_cpu.yaml"),
        "--model", str(tiny_model_dir), "--stage", "forget", "--tasks", "forget_toy", "--max_steps", "1",
        "--output_dir", str(out), "--push_to_hub", "--hub_model_id", "alice/tiny-forget", "--disable_tqdm", "true",
        "--base_model_id", BASE_ID,
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
    argv = ["push", str(out), "alice/tiny-forget", "--suite-dataset", SUITE,
            "--eval-results", str(_results(tmp_path / "own.json", 0.55)),
            "--eval-results", f"pretrained={_results(tmp_path / 'pre.json', 0.5)}",
            "--eval-results", f"finetuned={_results(tmp_path / 'ft.json', 0.75)}"]
    assert main(argv) == 0
    stored = hub.files("alice/tiny-forget")
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md", "forget_config.json",
            "tokenizer.json", "labels.jsonl", "eval_results.json"} <= set(stored)
    assert set(stored) == {p.name for p in out.iterdir() if is_allowed(p.name)}  # the allow-list, nothing else

    snapshot = Path(snapshot_download("alice/tiny-forget", cache_dir=str(tmp_path / "cache")))
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, str(snapshot))
    assert any("lora_A" in name for name, _ in model.named_parameters())
    local = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert local and all(torch.isfinite(v).all() for v in local.values())

    card = ModelCard.load(snapshot / "README.md")
    data = card.data
    assert data.base_model == BASE_ID  # a Hub id, never the local path it was trained from
    assert str(tiny_model_dir) not in str(data.to_dict())
    assert data.library_name == "peft" and data.pipeline_tag == "text-generation"
    # PEFT's and TRL's own tags survive next to ours
    assert {f"base_model:adapter:{BASE_ID}", "lora", "transformers", "trl", "sft",
            "lm-forget", "unlearning", "forget_toy"} <= set(data.tags)
    assert not [t for t in data.tags if t.startswith("base_model:") and BASE_ID not in t]
    (result,) = data.eval_results  # parsed from model-index by huggingface_hub itself
    assert (result.dataset_type, result.dataset_config, result.metric_type, result.metric_value) == (
        SUITE, "forget_toy", "accuracy", 0.55)
    assert "| `forget_toy` | 0.550 | 0.500 | 0.750 |" in card.text
    assert f"pretrained={BASE_ID},peft=alice/tiny-forget" in card.text
    assert (out / "README.md").read_bytes() == stored["README.md"]  # the folder shows what was pushed

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


def test_interrupted_upload_is_retried_and_never_half_written(hub, run_folder, tmp_path):
    from lm_forget.hub.push import push_folder

    out, _ = run_folder
    hub.state.fail_commits = 1  # create_commit does not retry by itself: our retry finishes the job
    push_folder(out, "alice/flaky")
    assert hub.commit_count("alice/flaky") == 2  # initial + exactly one upload
    assert hub.state.fail_commits == 0
    before = hub.state.repos["alice/flaky"].branches["main"]

    hub.state.fail_commits = 99  # the Hub stays down: a clear error, main unchanged
    with pytest.raises(HubError, match="HTTP 500"):
        push_folder(out, "alice/flaky", eval_results=str(_results(tmp_path / "r.json", 0.6)))  # a new card
    assert hub.state.repos["alice/flaky"].branches["main"] == before


def test_push_to_a_repo_you_cannot_write(hub, run_folder, capsys):
    from lm_forget.cli import main

    out, _ = run_folder
    assert main(["push", str(out), "bob/not-mine"]) != 0
    err = capsys.readouterr().err
    assert "403" in err and "write access" in err and TOKEN not in err
    assert "bob/not-mine" not in hub.state.repos
    assert (out / "adapter_model.safetensors").is_file()


# ---- only what is meant, only when finished, never hangs, nothing changed on failure ------------------------


def _copy(out: Path, dest: Path) -> Path:
    import shutil

    return Path(shutil.copytree(out, dest, ignore=shutil.ignore_patterns("checkpoints")))


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_only_the_allow_list_is_uploaded_whatever_the_names(hub, run_folder, tmp_path):
    from lm_forget.hub.push import push_folder

    folder = _copy(run_folder[0], tmp_path / "run")
    secret = tmp_path / "secret.txt"
    secret.write_text(f"HF_TOKEN={TOKEN}\n")
    junk = {"training_args.bin": b"pickle", "Training_Args.BIN": b"pickle", "optimizer.PT": b"x", "rng_state.pth": b"x",
            "ADAPTER_MODEL.SAFETENSORS": b"x", "adapter_model.safetensors.bak": b"x", "notes.txt": b"x",
            ".env": f"HF_TOKEN={TOKEN}".encode(), "secrets.json": b"{}", "model.pkl": b"x"}
    for name, data in junk.items():
        (folder / name).write_bytes(data)
    (folder / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (folder / "checkpoints" / "checkpoint-1" / "adapter_model.safetensors").write_bytes(b"x")
    (folder / "vocab.json").symlink_to(secret)  # an allowed name, but a link out of the folder
    push_folder(folder, "alice/allow", base_model_id=BASE_ID)
    stored = set(hub.files("alice/allow"))
    assert stored == {p.name for p in run_folder[0].iterdir() if p.is_file() and is_allowed(p.name)}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "README.md"} <= stored
    assert all(TOKEN.encode() not in content for content in hub.files("alice/allow").values())


def test_an_unfinished_run_is_refused(hub, run_folder, tmp_path, capsys):
    from lm_forget.cli import main

    folder = _copy(run_folder[0], tmp_path / "run")
    state = json.loads((folder / "forget_config.json").read_text())
    (folder / "forget_config.json").write_text(json.dumps({**state, "status": "training"}))
    before = _snapshot(folder)
    assert main(["push", str(folder), "alice/unfinished"]) != 0
    err = capsys.readouterr().err
    assert "did not finish" in err and "'training'" in err and "--resume" in err
    assert "alice/unfinished" not in hub.state.repos and not hub.state.requests  # not one request
    assert _snapshot(folder) == before


@pytest.mark.parametrize("fault", ["no token", "not my namespace", "hub down", "local base model", "stalled"])
def test_a_failed_push_leaves_the_folder_exactly_as_it_was(hub, run_folder, tmp_path, monkeypatch, fault):
    from lm_forget.hub.push import push_folder

    folder = _copy(run_folder[0], tmp_path / "run")
    repo, kwargs = "alice/fails", {"eval_results": str(_results(tmp_path / "own.json", 0.6)), "timeout": 0.5}
    if fault == "no token":
        monkeypatch.delenv("HF_TOKEN")
    elif fault == "not my namespace":
        repo = "bob/fails"
    elif fault == "hub down":
        hub.state.fail_commits = 99
    elif fault == "local base model":
        state = json.loads((folder / "forget_config.json").read_text())
        (folder / "forget_config.json").write_text(json.dumps({**state, "base_model_id": None}))
    else:
        hub.state.stall = {"preupload", "commit"}
    before = _snapshot(folder)
    with pytest.raises((HubError, ConfigError)) as info:
        push_folder(folder, repo, **kwargs)
    assert _snapshot(folder) == before, fault  # no card, no eval_results.json rewritten
    if fault == "local base model":
        assert "--base-model-id" in str(info.value) and not hub.state.requests  # refused before any request
    assert TOKEN not in str(info.value)


def test_a_stalled_hub_fails_in_bounded_time_and_says_what_landed(hub, run_folder):
    import time

    from lm_forget.hub.push import push_folder

    out, _ = run_folder
    hub.state.stall = {"create"}
    start = time.monotonic()
    with pytest.raises(HubError, match=r"did not answer within the 0\.5 s request deadline; nothing was committed"):
        push_folder(out, "alice/stalled", timeout=0.5)
    assert time.monotonic() - start < 10

    hub.state.stall = {"preupload"}  # retried by the client (6 tries), then: still nothing committed
    start = time.monotonic()
    with pytest.raises(HubError, match="nothing was committed"):
        push_folder(out, "alice/stalled", timeout=0.5)
    assert time.monotonic() - start < 15 and hub.commit_count("alice/stalled") == 1

    hub.state.stall = set()
    hub.state.stall_after_commit = True  # the commit lands, the answer never comes
    start = time.monotonic()
    with pytest.raises(HubError, match="the commit was sent and may have landed") as info:
        push_folder(out, "alice/landed", timeout=0.5)
    assert time.monotonic() - start < 15  # the client's own retries: a few deadlines, never forever
    assert "--timeout" in str(info.value)
    assert hub.commit_count("alice/landed") >= 2  # initial + the commit that did land
    assert "adapter_model.safetensors" in hub.files("alice/landed")


def test_hub_deadline_settings(monkeypatch):
    from lm_forget.hub.deadline import DEFAULT_TIMEOUT_S, TIMEOUT_ENV, resolve_timeout

    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert resolve_timeout(None) == DEFAULT_TIMEOUT_S and resolve_timeout(2) == 2.0
    monkeypatch.setenv(TIMEOUT_ENV, "7.5")
    assert resolve_timeout(None) == 7.5
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(ConfigError, match=f"{TIMEOUT_ENV}='soon' is not a number"):
        resolve_timeout(None)
    with pytest.raises(ConfigError, match="positive number of seconds"):
        resolve_timeout(0)


def test_token_flags_are_refused_before_anything_is_written(hub, tmp_path, tiny_model_dir, capsys, caplog):
    from lm_forget.cli import main
    from lm_forget.train.cli import parse_config

    out = tmp_path / "never"
    for argv in (["push", str(out), "alice/x", "--token", TOKEN], ["push", str(out), "alice/x", f"--hub-token={TOKEN}"],
                 ["tasks", "push", "alice/suite", "--token", TOKEN]):
        assert main(argv) != 0
        err = capsys.readouterr().err
        assert "not accepted" in err and "HF_TOKEN" in err and TOKEN not in err
    with pytest.raises(ConfigError, match="--hub_token is not accepted") as info:
        parse_config(["--model", str(tiny_model_dir), "--tasks", "forget_toy", "--output_dir", str(out),
                      "--hub_token", TOKEN])
    assert TOKEN not in str(info.value) and not out.exists()
    assert main(["train", "--model", str(tiny_model_dir), "--tasks", "forget_toy", "--output_dir", str(out),
                 "--hub_token", TOKEN]) != 0
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err + caplog.text and not out.exists()
    assert not hub.state.requests


def test_trainer_arguments_never_carry_a_token(run_folder):
    from lm_forget.train.config import ForgetConfig

    config = ForgetConfig(model="m", tasks=["forget_toy"], output_dir="o", report_to="none", use_cpu=True, bf16=False)
    config.hub_token = TOKEN  # set after parsing (a library caller): still never reaches the Trainer
    assert config.to_sft_config().hub_token is None
    assert "hub_token" not in config.settings()
    out, _ = run_folder
    for path in out.rglob("*"):  # checkpoints included: training_args.bin pickles the arguments
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
