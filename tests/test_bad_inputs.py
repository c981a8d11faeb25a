"""The bad-input corpus: every case ends in a clear error (what, where, how to fix) or a counted drop.

Each case runs the real entry point, ``lm_forget.cli.main`` (in-process, to keep the corpus fast) or
``python -m lm_forget`` in a subprocess (one case of each CLI boundary, so the exit code and stderr are the
process's own), on small bad mirrors made from real ../shared rows
and on broken copies of the real stories260K model, and checks the message, the exit code, that no
traceback leaks, and that nothing was written (no cache entry, no YAML, no run folder).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lm_forget.cli import main as cli_main

REPO_ROOT = Path(__file__).resolve().parents[1]
COLA = Path("nyu-mll/glue/cola")
CSQA = Path("tau/commonsense_qa/default")
LOGIQA = Path("EleutherAI/logiqa/logiqa")
ROWS = 40  # rows per split in a bad mirror: enough for a schema, fast to build


def _cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    full.pop("LM_FORGET_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "lm_forget", *args], capture_output=True, text=True, env=full,
                          timeout=timeout, cwd=REPO_ROOT)


def _main(argv: list[str], capsys) -> tuple[int, str]:
    """The real ``lm-forget`` entry point in-process (no interpreter start-up): (exit code, stderr)."""
    capsys.readouterr()
    code = cli_main(list(argv))
    return code, capsys.readouterr().err


def _clean_error(result: subprocess.CompletedProcess | tuple[int, str], *expected: str) -> str:
    code, err = (result.returncode, result.stderr) if not isinstance(result, tuple) else result
    assert code != 0, err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    for text in expected:
        assert text in err, f"{text!r} not in:\n{err[-3000:]}"
    return err


# ---------------------------------------------------------------- source rows (mirror files)

def _lines(mirror_dir: Path, rel: Path, split: str) -> list[str]:
    return (mirror_dir / rel / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:ROWS]


def _set(index: int, field: str, value, raw: str | None = None) -> Callable[[list[str]], list[str]]:
    """Edit row ``index`` (line index + 1): set a top-level field (or write ``raw`` JSON for it)."""
    def edit(lines: list[str]) -> list[str]:
        row = json.loads(lines[index])
        row[field] = "@@RAW@@" if raw is not None else value
        text = json.dumps(row)
        lines[index] = text.replace('"@@RAW@@"', raw) if raw is not None else text
        return lines
    return edit


def _drop(index: int, field: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        row = json.loads(lines[index])
        row.pop(field)
        lines[index] = json.dumps(row)
        return lines
    return edit


def _rename(index: int, old: str, new: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        row = json.loads(lines[index])
        row[new] = row.pop(old)
        lines[index] = json.dumps(row)
        return lines
    return edit


def _line(index: int, text: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        lines[index] = text
        return lines
    return edit


def _csqa_choice_null(lines: list[str]) -> list[str]:
    row = json.loads(lines[6])
    row["choices"]["text"][2] = None
    lines[6] = json.dumps(row)
    return lines


def _all_null(field: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        return [json.dumps({**json.loads(line), field: None}) for line in lines]
    return edit


# (id, dataset, task, split edited, edit, what the message must say)
ROW_CASES = [
    ("missing-text-field", COLA, "forget_cola", "train", _drop(4, "sentence"),
     ["train.jsonl:5:", "field 'sentence' is missing", "Fix or remove that line"]),
    ("misspelt-field", COLA, "forget_cola", "train", _rename(9, "sentence", "sentense"),
     ["train.jsonl:10:", "field 'sentence' is missing"]),
    ("missing-label", COLA, "forget_cola", "validation", _drop(2, "label"),
     ["validation.jsonl:3:", "field 'label' is missing"]),
    ("null-text", COLA, "forget_cola", "train", _set(2, "sentence", None),
     ["train.jsonl:3:", "field 'sentence' is null where the other rows have a string"]),
    ("null-label", COLA, "forget_cola", "train", _set(11, "label", None),
     ["train.jsonl:12:", "field 'label' is null"]),
    ("number-for-text", COLA, "forget_cola", "train", _set(0, "sentence", 42),
     ["train.jsonl:1:", "field 'sentence' is a number where the other rows have a string"]),
    ("string-label", COLA, "forget_cola", "train", _set(7, "label", "1"),
     ["train.jsonl:8:", "field 'label' is a string where the other rows have a number"]),
    ("boolean-label", COLA, "forget_cola", "validation", _set(5, "label", True),
     ["validation.jsonl:6:", "field 'label' is a boolean"]),
    ("list-for-text", COLA, "forget_cola", "train", _set(3, "sentence", ["a", "b"]),
     ["train.jsonl:4:", "field 'sentence' is a list"]),
    ("lone-surrogate", COLA, "forget_cola", "train", _set(5, "sentence", None, raw='"broken \\ud800 text"'),
     ["train.jsonl:6:", "field 'sentence'", "lone UTF-16 surrogate", "cannot be encoded"]),
    ("lone-low-surrogate", COLA, "forget_cola", "validation", _set(1, "sentence", None, raw='"\\udc00"'),
     ["validation.jsonl:2:", "lone UTF-16 surrogate"]),
    ("json-array-row", COLA, "forget_cola", "train", _line(3, '["not", "an", "object"]'),
     ["train.jsonl:4:", "expected a JSON object, got list"]),
    ("truncated-json", COLA, "forget_cola", "train", _line(6, '{"sentence": "cut off'),
     ["train.jsonl:7:", "malformed JSON row"]),
    ("nested-null-choice", CSQA, "forget_commonsense_qa", "train", _csqa_choice_null,
     ["train.jsonl:7:", "field 'choices.text[2]' is null where the other rows have a string"]),
    ("text-null-in-every-row", COLA, "forget_cola", "train", _all_null("sentence"),
     ["field 'sentence' is null but lm-eval's prompt reads it", "fill it in or remove the row"]),
    ("empty-file", COLA, "forget_cola", "validation", lambda lines: [],
     ["validation.jsonl: the mirror file is empty"]),
]


def _bad_mirror(root: Path, mirror_dir: Path, rel: Path, split: str, edit) -> Path:
    for name in ("train", "validation"):
        lines = _lines(mirror_dir, rel, name)
        if name == split:
            lines = edit(lines)
        (root / rel).mkdir(parents=True, exist_ok=True)
        (root / rel / f"{name}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return root / rel / f"{split}.jsonl"


def _show(task: str, capsys) -> tuple[int, str, str]:
    code = cli_main(["tasks", "show", task])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LM_FORGET_CACHE", str(cache))
    monkeypatch.delenv("LM_FORGET_DEBUG", raising=False)
    return cache


@pytest.mark.parametrize(("rel", "task", "split", "edit", "expected"),
                         [pytest.param(*case[1:], id=case[0]) for case in ROW_CASES])
def test_bad_source_row(rel, task, split, edit, expected, tmp_path, mirror_dir, fresh_cache, monkeypatch, capsys):
    path = _bad_mirror(tmp_path / "mirror", mirror_dir, rel, split, edit)
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(tmp_path / "mirror"))
    code, out, err = _show(task, capsys)
    _clean_error((code, err), str(path.parent), *expected)
    assert code == 2 and "None" not in out
    assert not list(fresh_cache.rglob("*.jsonl")), "a failed build left docs in the cache"


def test_invalid_utf8_names_the_line(tmp_path, mirror_dir, fresh_cache, monkeypatch, capsys):
    _bad_mirror(tmp_path / "mirror", mirror_dir, COLA, "train", lambda lines: lines)
    path = tmp_path / "mirror" / COLA / "train.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[8] = lines[8].replace(b"a", b"\xff", 1)
    path.write_bytes(b"\n".join(lines))
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(tmp_path / "mirror"))
    code, _, err = _show("forget_cola", capsys)
    _clean_error((code, err), f"{path}:9:", "not valid UTF-8", "Save the mirror as UTF-8")


def test_null_text_in_a_parquet_mirror(tmp_path, mirror_dir, fresh_cache, monkeypatch, capsys):
    import datasets

    _bad_mirror(tmp_path / "mirror", mirror_dir, COLA, "train", lambda lines: lines)
    jsonl = tmp_path / "mirror" / COLA / "validation.jsonl"
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows[4]["sentence"] = None
    jsonl.unlink()
    datasets.Dataset.from_list(rows).to_parquet(str(jsonl.with_suffix(".parquet")))
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(tmp_path / "mirror"))
    code, _, err = _show("forget_cola", capsys)
    _clean_error((code, err), "validation.parquet: row 5: text field 'sentence' is null", "Fill in the text")


@pytest.mark.parametrize("label", [7, -1], ids=["label-out-of-range", "label-minus-one"])
def test_unscorable_label_is_a_counted_drop(label, tmp_path, mirror_dir, fresh_cache, monkeypatch, capsys):
    _bad_mirror(tmp_path / "mirror", mirror_dir, COLA, "train", _set(3, "label", label))
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(tmp_path / "mirror"))
    code, out, err = _show("forget_cola", capsys)
    assert code == 0, err
    assert "invalid_label 1" in out.split("evaluation")[0], out  # counted under the forget pool's drops
    assert "None" not in out


# ---------------------------------------------------------------- over-long training prompts

@pytest.fixture(scope="module")
def long_docs(tmp_path_factory, mirror_dir) -> list[dict]:
    """Real forget_boolq docs (long passages), built from a parity split of the real validation file."""
    from lm_forget.data.api import load_docs

    root = tmp_path_factory.mktemp("boolq_mirror")
    rel = Path("aps/super_glue/boolq")
    lines = (mirror_dir / rel / "validation.jsonl").read_text(encoding="utf-8").splitlines()[:120]
    (root / rel).mkdir(parents=True)
    (root / rel / "train.jsonl").write_text("".join(x + "\n" for x in lines[0::2]), encoding="utf-8")
    (root / rel / "validation.jsonl").write_text("".join(x + "\n" for x in lines[1::2]), encoding="utf-8")
    old = os.environ.get("LM_FORGET_DATA_DIR")
    os.environ["LM_FORGET_DATA_DIR"] = str(root)
    try:
        return load_docs("forget_boolq", "train")[:3]
    finally:
        if old is None:
            del os.environ["LM_FORGET_DATA_DIR"]
        else:
            os.environ["LM_FORGET_DATA_DIR"] = old


@pytest.mark.e2e
def test_long_prompts_are_cut_from_the_left_exactly_as_lm_eval_scores_them(long_docs, tiny_model_dir):
    import torch
    from lm_eval.models.huggingface import HFLM

    from lm_forget.train.dataset import build_examples, encode_pair, tokenize_examples

    limit = 64
    lm = HFLM(pretrained=str(tiny_model_dir), max_length=limit - 1, device="cpu", batch_size=1)
    rows = build_examples(long_docs, [int(d["label"]) for d in long_docs])
    items = tokenize_examples(rows, lm.tokenizer, max_length=limit)
    assert len(items) == len(rows) and all(row["truncated_tokens"] > 0 for row in rows)
    for row, item in zip(rows, items, strict=True):
        context_ids, answer_ids = encode_pair(lm.tokenizer, row["prompt"], row["completion"])
        assert len(item["input_ids"]) == limit and item["input_ids"][-len(answer_ids):] == answer_ids
        assert item["input_ids"][: -len(answer_ids)] == context_ids[-(limit - len(answer_ids)):]
        assert sum(item["completion_mask"]) == len(answer_ids)
        ((lm_eval_logprob, _),) = lm._loglikelihood_tokens([((row["prompt"], row["completion"]), context_ids,
                                                             answer_ids)], disable_tqdm=True)
        with torch.no_grad():
            logits = lm.model(torch.tensor([item["input_ids"]])).logits[0].log_softmax(-1)
        targets = torch.tensor(item["input_ids"][1:])
        trained = logits[:-1].gather(1, targets[:, None])[:, 0][-len(answer_ids):].sum().item()
        assert trained == pytest.approx(lm_eval_logprob, abs=1e-4)


def test_answer_longer_than_the_limit_is_an_error(long_docs, tiny_model_dir):
    from transformers import AutoTokenizer

    from lm_forget.errors import DataError
    from lm_forget.train.dataset import build_examples, tokenize_examples

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    rows = build_examples(long_docs[:1], [0])
    with pytest.raises(DataError, match=r"answer alone is \d+ tokens.*raise --max_length"):
        tokenize_examples(rows, tokenizer, max_length=1)


@pytest.mark.e2e
def test_train_counts_truncated_examples(tmp_path, tiny_model_dir, suite_mirror, monkeypatch, capsys, caplog):
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    out = tmp_path / "run"
    code, err = _main(["train", "--config", str(REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml"), "--model",
                       str(tiny_model_dir), "--tasks", "forget_boolq", "--num_examples", "4", "--max_steps", "1",
                       "--max_length", "48", "--output_dir", str(out)], capsys)
    assert code == 0, err[-3000:]
    state = json.loads((out / "forget_config.json").read_text())
    assert state["examples_per_task"] == {"forget_boolq": 4} and state["truncated_examples"] == 4
    assert "4 of 4 training examples are longer than 48 tokens" in caplog.text
    assert len((out / "labels.jsonl").read_text().splitlines()) == 4


# ---------------------------------------------------------------- library errors at our boundaries

def _train_args(model: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--config", str(REPO_ROOT / "configs" / "train" / "train_tiny_cpu.yaml"), "--model", str(model),
            "--tasks", "forget_cola", "--num_examples", "4", "--output_dir", str(out), *extra]


@pytest.fixture()
def model_copy(tmp_path, tiny_model_dir) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    return copy


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00\x01 not a safetensors file " * 10)


def _bad_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[8:16] = b"{{{{{{{{"
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _garbage, _bad_header], ids=["truncated", "garbage", "bad-header"])
def test_corrupt_weights_file(damage, model_copy, tmp_path, suite_mirror, monkeypatch, capsys):
    damage(model_copy / "model.safetensors")
    out = tmp_path / "run"
    if damage is _truncate:  # the whole process: its exit code and stderr
        result = _cli(*_train_args(model_copy, out), env={"LM_FORGET_DATA_DIR": str(suite_mirror)})
    else:
        monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
        result = _main(_train_args(model_copy, out), capsys)
    _clean_error(result, f"cannot load model '{model_copy}'", "intact weights")
    assert not (out / "forget_config.json").exists()


def test_corrupt_tokenizer_file(model_copy, tmp_path, suite_mirror, monkeypatch, capsys):
    (model_copy / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "Nonsense"}}')
    out = tmp_path / "run"
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    result = _main(_train_args(model_copy, out), capsys)
    _clean_error(result, "cannot load the tokenizer", "--model")
    assert not (out / "forget_config.json").exists()


def test_adapter_whose_shapes_do_not_fit_the_base(tmp_path, tiny_model_dir, suite_mirror, monkeypatch, capsys):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig.from_pretrained(str(tiny_model_dir))
    config.hidden_size, config.intermediate_size = 32, 64  # another model's shapes
    other = AutoModelForCausalLM.from_config(config)
    adapter = tmp_path / "adapter"
    get_peft_model(other, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(str(adapter))
    cfg_path = adapter / "adapter_config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()),
                                    "base_model_name_or_path": str(tiny_model_dir)}))
    out = tmp_path / "run"
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    result = _main(_train_args(tiny_model_dir, out, "--stage", "forget", "--init_adapter", str(adapter)), capsys)
    _clean_error(result, f"--init_adapter '{adapter}' does not load on base model", "size mismatch",
                 "Pass the adapter trained on this --model")
    assert not (out / "forget_config.json").exists()


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--model", "not a valid/repo id!", "cannot load the tokenizer of base model 'not a valid/repo id!'"),
    ("--init_adapter", "a/b/c/d", "--init_adapter 'a/b/c/d' is not a PEFT adapter"),
], ids=["invalid-model-repo-id", "invalid-adapter-repo-id"])
def test_invalid_repo_id(flag, value, expected, tmp_path, tiny_model_dir, suite_mirror, monkeypatch, capsys):
    argv = _train_args(tiny_model_dir, tmp_path / "run")
    if flag == "--model":
        argv[argv.index("--model") + 1] = value
    else:
        argv += ["--stage", "forget", flag, value]
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(suite_mirror))
    _clean_error(_main(argv, capsys), expected)
    assert not (tmp_path / "run").exists()


def test_unknown_task_in_eval(tiny_model_dir):
    result = _cli("eval", "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}", "--tasks",
                  "forget_boolk", "--device", "cpu")
    _clean_error(result, "lm-eval has no task 'forget_boolk'", "did you mean: forget_boolq", "lm-forget tasks list")


# ---------------------------------------------------------------- derive lists

@pytest.fixture(scope="module")
def logiqa_mirror(tmp_path_factory, mirror_dir) -> Path:
    root = tmp_path_factory.mktemp("logiqa_mirror")
    (root / LOGIQA).mkdir(parents=True)
    (root / LOGIQA / "train.jsonl").write_bytes((mirror_dir / LOGIQA / "validation.jsonl").read_bytes())
    (root / LOGIQA / "test.jsonl").write_bytes((mirror_dir / LOGIQA / "test.jsonl").read_bytes())
    return root


@pytest.mark.parametrize(("sources", "expected"), [
    (["logiqa", "logiqaa", "copa"], ["lm-eval has no task 'logiqaa'", "Did you mean: logiqa", "nothing was written"]),
    (["logiqa", "gsm8k"], ["'gsm8k' has output_type 'generate_until'", "only multiple_choice", "nothing was written"]),
    (["gsm8k"], ["only multiple_choice", "Nothing was written"]),
    (["logiqa", "forget_boolq"], ["'forget_boolq' is already a forget task", "nothing was written"]),
], ids=["unknown-name-in-list", "generative-task-in-list", "generative-task-without-data", "suite-name-in-list"])
@pytest.mark.e2e
def test_derive_checks_every_name_before_writing(sources, expected, tmp_path, logiqa_mirror, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.yaml").write_text("task: mine\n")
    empty = tmp_path / "no_data"
    empty.mkdir()
    data = str(logiqa_mirror) if "logiqa" in sources else str(empty)
    env = {"LM_FORGET_DATA_DIR": data, "LM_FORGET_CACHE": str(tmp_path / "c")}
    if sources[1:2] == ["logiqaa"]:  # the whole process: its exit code and stderr
        result = _cli("tasks", "derive", *sources, "--out", str(out), env=env)
    else:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        result = _main(["tasks", "derive", *sources, "--out", str(out)], capsys)
    _clean_error(result, *expected)
    assert sorted(p.name for p in out.iterdir()) == ["keep.yaml"]
    assert not list((tmp_path / "c").rglob("*.jsonl")), "nothing is built before every name is checked"


# ---------------------------------------------------------------- train config keys

@pytest.mark.parametrize(("yaml_text", "extra", "expected"), [
    ("lerning_rate: 1.0e-4\n", [], ["unknown key 'lerning_rate'", "Did you mean 'learning_rate'?"]),
    ("num_exampels: 8\n", [], ["unknown key 'num_exampels'", "Did you mean 'num_examples'?"]),
    ("zzz_qqq: 1\n", [], ["unknown key 'zzz_qqq'", "ForgetConfig / SFTConfig fields"]),
    ("- a\n- b\n", [], ["expected a mapping of settings"]),
    ("model: [unclosed\n", [], [":2: not valid YAML"]),
    ("seed: 1\n", ["--num_exampels", "8"], ["unknown flag --num_exampels", "Did you mean 'num_examples'?"]),
], ids=["yaml-typo", "yaml-typo-2", "yaml-unknown-key", "yaml-not-a-mapping", "yaml-syntax", "flag-typo"])
def test_train_config_keys(yaml_text, extra, expected, tmp_path, capsys):
    path = tmp_path / "train.yaml"
    path.write_text(yaml_text)
    out = tmp_path / "run"
    argv = ["train", "--config", str(path), "--model", "x", "--tasks", "forget_cola", "--output_dir", str(out), *extra]
    if yaml_text.startswith("lerning_rate"):  # the whole process: its exit code and stderr
        result = _cli(*argv)
        code, err = result.returncode, result.stderr
    else:
        code, err = _main(argv, capsys)
    _clean_error((code, err), *expected)
    assert code == 2 and (str(path) in err or extra)
    assert not out.exists()


# ---------------------------------------------------------------- the one error path

def test_debug_shows_the_traceback_and_the_default_does_not():
    plain = _cli("tasks", "show", "forget_boolk")
    _clean_error(plain, "lm-forget tasks: error: unknown forget task 'forget_boolk'", "forget_boolq")
    debug = _cli("--debug", "tasks", "show", "forget_boolk")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "ConfigError" in debug.stderr
