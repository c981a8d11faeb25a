"""Hub and Python-API inputs that used to end badly: one line, exit 2, nothing sent or written.

- invalid repo ids (``tester/bad name``, ``../../etc``) raised huggingface_hub's validation error raw;
- a non-ASCII ``HF_TOKEN`` raised UnicodeEncodeError;
- ``--private`` on an existing public repo left it public with exit 0;
- a NaN metric was published as ``nan`` in the card and a bare ``NaN`` (invalid JSON) in eval_results.json;
- ``load_docs(task, seed=0.0)`` (or ``True``) silently sampled other docs than ``seed=0`` (``1``), and
  ``task_dirs="/some/dir"`` walked ``/`` character by character.

Real huggingface_hub client against the loopback Hub (tests/hub_server.py), a real 1-step stories260K run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_server import serve

from lm_forget.cli import main
from lm_forget.errors import ConfigError

TOKEN = "hf_lmforgetTESTtoken0123456789secret"
BASE_ID = "lm-forget-tests/stories260K"
DOCS = [
    {"id": f"forget_toy/train/{i}", "task": "forget_toy", "split": "train", "prompt": f"Is {i} even?\nAnswer:",
     "choices": ["no", "yes"], "label": int(i % 2 == 0), "continuation": "", "target_delimiter": " "}
    for i in range(8)
]


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    server = serve(monkeypatch, tmp_path, {TOKEN: "alice"}, TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, tiny_model_dir) -> Path:
    from lm_forget.train.api import train
    from lm_forget.train.cli import parse_config

    out = tmp_path_factory.mktemp("hub_inputs") / "forget"
    config = parse_config([
        "--config", str(Path(__file__).resolve().parents[1] / "configs" / "train" / "train_tiny_cpu.yaml"),
        "--model", str(tiny_model_dir), "--stage", "forget", "--tasks", "forget_toy", "--max_steps", "1",
        "--output_dir", str(out), "--disable_tqdm", "true", "--base_model_id", BASE_ID])
    train(config, docs=DOCS)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def refused(argv: list[str], capsys, needle: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "unexpected" not in err, err
    assert needle in err, err
    return err


@pytest.mark.parametrize("repo_id", ["tester/bad name", "../../etc", "a/b/c"])
def test_invalid_repo_ids_are_refused_before_any_request(hub, run_folder, capsys, repo_id):
    before = _files(run_folder)
    refused(["push", str(run_folder), repo_id], capsys, f"the Hub repo {repo_id!r} is not a valid Hugging Face repo id")
    refused(["tasks", "push", repo_id, "forget_cola"], capsys, "is not a valid Hugging Face repo id")
    assert hub.state.requests == [] and _files(run_folder) == before


def test_invalid_hub_model_id_is_refused_before_training(tmp_path, capsys, tiny_model_dir):
    out = tmp_path / "out"
    config = Path(__file__).resolve().parents[1] / "configs" / "train" / "train_tiny_cpu.yaml"
    refused(["train", "--config", str(config), "--model", str(tiny_model_dir), "--tasks", "forget_cola",
             "--output_dir", str(out), "--push_to_hub", "--hub_model_id", "me/bad name", "--base_model_id", BASE_ID],
            capsys,
            "--hub_model_id 'me/bad name' is not a valid Hugging Face repo id")
    assert not out.exists()


def test_non_ascii_token_is_refused_without_echoing_it(hub, run_folder, capsys, monkeypatch):
    bad = "hf_abc\u200bdef\u00e9"
    monkeypatch.setenv("HF_TOKEN", bad)
    err = refused(["push", str(run_folder), "alice/tiny"], capsys, "holds non-ASCII or invisible characters")
    assert "abc" not in err
    assert not [r for r in hub.state.requests if r[0] == "POST"]


def test_private_on_an_existing_public_repo_is_refused(hub, run_folder, capsys):
    assert main(["push", str(run_folder), "alice/public-forget"]) == 0
    repo = hub.state.repos["alice/public-forget"]
    commits = len(repo.commits)
    refused(["push", str(run_folder), "alice/public-forget", "--private"], capsys,
            "alice/public-forget already exists and is public; --private does not change")
    assert len(repo.commits) == commits and not repo.private


def test_nan_metrics_are_never_published_as_bare_nan(hub, run_folder, tmp_path):
    from huggingface_hub import ModelCard

    results = tmp_path / "results.json"
    results.write_text('{"results": {"forget_toy": {"acc,none": NaN}}}')  # lm-eval writes NaN like this
    pre = tmp_path / "pre.json"
    pre.write_text('{"results": {"forget_toy": {"acc,none": 0.5}}}')
    assert main(["push", str(run_folder), "alice/nan-forget", "--eval-results", str(results),
                 "--eval-results", f"pretrained={pre}", "--suite-dataset", "alice/suite"]) == 0
    stored = hub.files("alice/nan-forget")

    def strict(constant):  # what every other JSON reader does with a bare NaN
        raise ValueError(f"invalid JSON constant {constant}")

    data = json.loads(stored["eval_results.json"], parse_constant=strict)
    assert next(iter(data.values()))["results"]["forget_toy"]["acc,none"] is None
    card = ModelCard(stored["README.md"].decode())
    assert "| `forget_toy` | NaN (undefined) | 0.500 |" in card.text and "| nan |" not in card.text
    assert not card.data.eval_results  # no model-index entry with a NaN value
    # pushing again from the folder (which now holds eval_results.json) keeps the metric undefined
    assert main(["push", str(run_folder), "alice/nan-forget"]) == 0
    assert "NaN (undefined)" in hub.files("alice/nan-forget")["README.md"].decode()


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"seed": 0.0}, "seed must be a whole number (an int), got 0.0 (float)"),
    ({"seed": True}, "seed must be a whole number (an int), got True (bool)"),
    ({"train_size": 100.5}, "train_size must be a whole number (an int), got 100.5"),
    ({"task_dirs": "/some/dir"}, "task_dirs must be a list of folders, got the str '/some/dir'"),
    ({"task_dirs": Path("/some/dir")}, "task_dirs must be a list of folders"),
])
def test_load_docs_checks_types(kwargs, needle):
    from lm_forget.data.api import load_docs

    with pytest.raises(ConfigError) as info:
        load_docs("forget_cola", **kwargs)
    assert needle in str(info.value)


@pytest.mark.parametrize(("fault", "needle"), [
    ("cut", "the connection broke"), ("html", "the answer was not the Hub's JSON (a proxy or login page?"),
])
def test_a_commit_answer_lost_after_it_landed_is_never_retried(hub, run_folder, capsys, fault, needle):
    """The commit is stored, then the connection breaks (or a proxy page comes back): it may have landed, so it
    is not sent again (a retry would land it twice), and the message says to check the repo's history."""
    before = _files(run_folder)
    hub.state.after_commit = fault
    err = refused(["push", str(run_folder), "alice/cut-forget"], capsys, needle)
    assert "the commit was sent and may have landed: check the repo's history" in err
    assert len(hub.state.repos["alice/cut-forget"].commits) == 2  # the initial one and ours, landed once
    assert _files(run_folder) == before  # the folder is updated only after a confirmed commit
