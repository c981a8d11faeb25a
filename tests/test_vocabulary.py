"""One name per concept (issue 23): docs/architecture.md's settings table is checked against the CLI ``--help``
texts, the run-config schema and the method registry, and the retired spellings appear in no help text, no
schema, no plan and no record file a study writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lm_forget.cli import COMMANDS, main

ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
#: spellings the project used for a concept that now has one name (the issue's table), and what replaced them
RETIRED = {
    "label_mode": "forget.method / --method",
    "fine-tuned=": "finetuned (a phase)",
    "after flip": "the method's name",
    "forget_examples": "num_examples",
    "test_size": "eval_size",
    "split_seed": "data.seed / data_seed",
    "n_resamples": "n_bootstrap",
    "ci95_": "ci_low / ci_high",
    "forget.seed": "seeds.forget",
    "_low": "<estimate>_lo",
}


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _settings_table() -> list[list[str]]:
    text = ARCHITECTURE.read_text(encoding="utf-8").split("## One settings model", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| concept")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def _code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _config_paths() -> set[str]:
    from lm_forget.run.schema import RunConfig

    paths: set[str] = set()

    def walk(model, prefix: str) -> None:
        for name, info in model.model_fields.items():
            paths.add(prefix + name)
            if hasattr(info.annotation, "model_fields"):
                walk(info.annotation, f"{prefix}{name}.")
    walk(RunConfig, "")
    from lm_forget.analysis.options import AnalysisOptions
    from lm_forget.data.config import DataConfig

    paths |= {f"analysis.options.{name}" for name in AnalysisOptions.__dataclass_fields__}
    paths |= {f"data.{name}" for name in DataConfig.__dataclass_fields__}
    return paths


def _attribute(cls: str, attr: str, cell: list[str]) -> bool:
    """Whether class ``cls`` (in a module the cell names, else found by its ``class`` line) has ``attr``."""
    import importlib

    package = ARCHITECTURE.parents[1] / "lm_forget"
    files = [package / t for t in cell if t.endswith(".py") and (package / t).is_file()]
    files += [p for p in package.rglob("*.py") if f"class {cls}" in p.read_text(encoding="utf-8")]
    for path in files:
        module = importlib.import_module(".".join(path.relative_to(package.parent).with_suffix("").parts))
        found = getattr(module, cls, None)
        if found is not None and (not attr or attr in getattr(found, "model_fields", {})
                                  or attr in getattr(found, "__dataclass_fields__", {}) or hasattr(found, attr)):
            return True
    return False


def test_the_settings_table_names_real_keys_flags_and_stages(capsys):
    from lm_forget.run.schema import STAGES
    from lm_forget.train.methods import method_names

    rows = _settings_table()
    assert len(rows) >= 12 and all(len(r) == 6 for r in rows), rows
    paths, stages, methods = _config_paths(), set(STAGES), set(method_names())
    helps = {c: _help(c, capsys) for c in COMMANDS if c != "eval"}  # eval's flags are lm-eval's own
    flags = {c: set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", text)) for c, text in helps.items()}
    checked = 0
    for concept, types, config, train, lm_eval, reaches in rows:
        for token in _code(types):  # `Class` or `Class.field`, in the module the cell names (`path.py`)
            if re.fullmatch(r"[A-Z]\w+(\.\w+)?", token):
                cls, _, attr = token.partition(".")
                assert _attribute(cls, attr, _code(types)), (concept, token)
                checked += 1
        for token in _code(config):
            if token[0].isupper():  # a type the section holds (ForgetConfig fields)
                continue
            key = token.rstrip(":").split(" ")[0]
            assert key in paths or key in stages or key in methods or key == "forget.seed", (concept, token)
            checked += 1
        for token in _code(train):
            flag = token.split(" ")[0]
            if flag.startswith("--") and "refused" not in train:
                assert flag in flags["train"], (concept, flag)
                checked += 1
        for token in _code(reaches):
            if (m := re.match(r"lm-forget ((?:\w+ )+)(--[a-z-]+)", token)) and m[1] != "eval ":
                command = m[1].strip()
                if command not in flags:
                    flags[command] = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", _help(command, capsys)))
                assert m[2] in flags[command], (concept, token)
                checked += 1
        for token in _code(lm_eval):
            if token.startswith("--metadata"):
                from lm_forget.data.config import DataConfig

                keys = set(json.loads(token.split("'")[1].replace("…", "0").replace("N", "0")))
                assert keys <= set(DataConfig().to_metadata()) | {"eval_on"}, (concept, keys)
                checked += 1
    assert checked >= 30


def test_the_train_table_row_flags_are_trl_spelled_and_the_others_dashed(capsys):
    """The style line of the table ("Flags:") holds for every flag the table names."""
    for concept, _, _, train, _, reaches in _settings_table():
        assert all("-" not in f[2:] for t in _code(train) for f in t.split(" ")[:1] if f.startswith("--")), concept
        assert all("_" not in m for t in _code(reaches) for m in re.findall(r"lm-forget \w+ (--\S+)", t)), concept


def test_retired_spellings_are_nowhere_a_user_or_a_record_sees_them(tmp_path, capsys):
    from lm_forget.run import build_plan, run_config_from_dict
    from lm_forget.run.schema import RunConfig

    texts = {f"lm-forget {c} --help": _help(c, capsys) for c in COMMANDS if c != "eval"}
    texts["run config schema"] = json.dumps(RunConfig.model_json_schema())
    plan = build_plan(run_config_from_dict({
        "model": {"name_or_path": "some/model"}, "run_dir": str(tmp_path / "run"),
        "tasks": {"finetune": ["forget_cola", "forget_sst2"], "forget": ["forget_cola"],
                  "eval": ["forget_cola", "forget_sst2"]},
        "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "relearn",
                   "eval_relearn", "features", "analyze"],
        "seeds": {"finetune": [0, 1], "forget": [0]}, "forget": {"num_examples": [16]},
        "relearn": {"num_examples": [4]}}))
    texts["plan"] = json.dumps([s.settings for s in plan.steps], default=str)
    for where, text in texts.items():
        for old, new in RETIRED.items():
            if old == "_low":  # a bound column: `_low` ends a word only where it was a column suffix
                assert not re.search(r"\w_low\b", text.replace("ci_low", "")), (where, old, new)
            else:
                assert old not in text, f"{where} says {old!r}; the one name is {new}"


@pytest.mark.e2e
@pytest.mark.xdist_group("demo_study")
def test_a_study_writes_no_retired_spelling(quick_demo):
    """Every record file of the quick demo (step settings, done markers, training records, table headers,
    findings) uses the one names."""
    seen = 0
    for path in Path(quick_demo.out).rglob("*"):
        if path.suffix not in (".json", ".csv") or not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".csv":
            text = text.splitlines()[0] if text else ""  # the header: the names (rows are data)
        elif path.name.startswith(("results_", "samples_")):
            continue  # lm-eval's own files
        seen += 1
        for old, new in RETIRED.items():
            if old == "_low":
                assert not re.search(r"\w_low\b", text.replace("ci_low", "")), (path, old, new)
            elif old not in ("test_size", "after flip"):  # HF datasets / prose may use these words themselves
                assert old not in text, f"{path} says {old!r}; the one name is {new}"
    assert seen > 50
