"""Run configs: bad configs fail with a clear error before any work starts; good ones load strictly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lm_forget.cli import main as cli_main
from lm_forget.data.registry import suite_task_names
from lm_forget.errors import ConfigError
from lm_forget.run.config import STAGES, load_run_config, run_config_from_dict, validate_stages

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, **changes) -> dict:
    data = {
        "run_dir": str(tmp_path / "run"),
        "model": {"name_or_path": "some/model"},
        "tasks": {"finetune": ["forget_cola"], "forget": ["forget_cola", "forget_openbookqa"],
                  "eval": ["forget_cola", "forget_openbookqa"]},
        "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget"],
    }
    for key, value in changes.items():
        data[key] = value
    return data


def _run_cli(tmp_path: Path, data: dict, *extra: str, capsys) -> tuple[int, str]:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    code = cli_main(["run", str(path), *extra])
    return code, capsys.readouterr().err


def test_good_config_loads_and_expands_suite(tmp_path):
    config = run_config_from_dict(_config(tmp_path, tasks={"finetune": ["suite"], "forget": ["forget_c*"],
                                                           "eval": ["suite"]}))
    assert config.tasks.finetune == suite_task_names()
    assert config.tasks.forget == ["forget_commonsense_qa", "forget_cola", "forget_cb"]
    assert config.forget.num_examples == [1000]  # a list: each size is its own cell


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"seedz": [0]}, "unknown key 'seedz'. Did you mean 'seeds'?"),
        ({"forget": {"label_mode": "flip"}}, "config.forget: unknown key 'label_mode'"),
        ({"eval": {"batch_size": 8, "limt": 5}}, "config.eval: unknown key 'limt'. Did you mean 'limit'?"),
        ({"forget": {"method": "invert"}}, "forget.method: 'invert'"),
        ({"seeds": ["a"]}, "config.seeds.forget[0]: Input should be a valid integer"),
        ({"seeds": {"finetune": [0], "forgt": [1]}}, "config.seeds: unknown key 'forgt'. Did you mean 'forget'?"),
        ({"seeds": {"finetune": [1, 1]}}, "seeds.finetune: [1, 1] has duplicates"),
        ({"seeds": {"finetune": [0, 1]}, "finetune": {"seed": 3}}, "keep seeds.finetune"),
        ({"data": {"sed": 3}}, "config.data: unknown key 'sed'. Did you mean 'seed'?"),
        ({"model": {"name_or_path": "x", "revison": "v2"}}, "config.model: unknown key 'revison'"),
    ],
)
def test_bad_keys_and_values(tmp_path, changes, expected):
    with pytest.raises(ConfigError) as info:
        run_config_from_dict(_config(tmp_path, **changes))
    assert expected in str(info.value)


def test_trainer_settings_are_forget_config_fields(tmp_path):
    config = run_config_from_dict(_config(tmp_path, forget={"lora_r": 4, "warmup_steps": 0.1, "use_lora": False}))
    assert config.forget.trainer_settings["lora_r"] == 4 and config.forget.use_lora is False
    with pytest.raises(ConfigError, match=r"config.forget: unknown key 'learning_rat'. Did you mean 'learning_rate'\?"):
        run_config_from_dict(_config(tmp_path, forget={"learning_rat": 1e-3}))
    with pytest.raises(ConfigError, match=r"config.forget: unknown key 'lora_rr'. Did you mean 'lora_r'\?"):
        run_config_from_dict(_config(tmp_path, forget={"lora_rr": 4}))


@pytest.mark.parametrize(("section", "expected"), [
    ({"lora": True}, "config.forget: unknown key 'lora'."),
    ({"batch_size": 4}, "config.forget: unknown key 'batch_size'."),
    ({"args": {"bf16": True}}, "config.forget: unknown key 'args'."),
    ({"output_dir": "x"}, "forget.output_dir: set by the study runner from run_dir"),
    ({"split_seed": 3}, "config.forget: unknown key 'split_seed'."),
    ({"use_lora": "yes"}, "config.forget.use_lora: Input should be a valid boolean"),
    ({"lr_scheduler_type": "cosin"}, "forget: "),
    ({"learning_rate": "fast"}, "config.forget.learning_rate: Input should be a valid number"),
])
def test_unknown_names_runner_keys_and_bad_values_fail_at_load(tmp_path, section, expected):
    with pytest.raises(ConfigError) as info:
        run_config_from_dict(_config(tmp_path, forget=section))
    assert expected in str(info.value)


def test_analysis_options_and_feature_split_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="analysis.options: unknown key 'outcom'. Did you mean 'outcome'"):
        run_config_from_dict(_config(tmp_path, analysis={"options": {"outcom": "forget_ratio"}}))
    with pytest.raises(ConfigError, match="config.analysis.feature_split: Input should be 'train' or 'test'"):
        run_config_from_dict(_config(tmp_path, analysis={"feature_split": "tarin"}))


def test_set_overrides_and_config_yaml_round_trip(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path)))
    config = load_run_config(path, sets=["forget.learning_rate=3e-5", "seeds=[0, 1]", "forget.lora_r=4",
                                         "data.seed=3"])
    assert (config.forget.learning_rate, config.forget_seeds, config.data.seed) == (3e-5, [0, 1], 3)
    assert config.finetune_seeds == [None]
    assert config.forget.trainer_settings["lora_r"] == 4
    again = run_config_from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert again.to_dict() == config.to_dict()
    with pytest.raises(ConfigError, match=r"after --set forget.learnin_rate=1.*Did you mean 'learning_rate'"):
        load_run_config(path, sets=["forget.learnin_rate=1"])
    with pytest.raises(ConfigError, match="write KEY=VALUE"):
        load_run_config(path, sets=["forget.learning_rate"])


def test_unknown_task_names_the_section_and_suggests(tmp_path):
    with pytest.raises(ConfigError) as info:
        run_config_from_dict(_config(tmp_path, tasks={"finetune": ["forget_cola"], "forget": ["forget_bolq"],
                                                      "eval": ["forget_cola"]}))
    assert "tasks.forget" in str(info.value) and "forget_boolq" in str(info.value)


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        (["forget", "finetune"], "'finetune' cannot come after 'forget'"),
        (["eval_forget", "forget"], "'forget' cannot come after 'eval_forget'"),
        (["finetune", "eval_forget"], "'eval_forget' needs 'forget'"),
        (["finetune", "finetune"], "listed twice"),
        (["finetune", "forgetting"], "unknown stage 'forgetting'"),
        ([], "stages: empty"),
    ],
)
def test_nonsensical_stage_orders(stages, expected):
    with pytest.raises(ConfigError, match=expected):
        validate_stages(stages)


def test_all_stages_in_order_are_fine():
    validate_stages(list(STAGES))


@pytest.mark.parametrize("shard", ["5/4", "0/4", "1/0", "three/4"])
def test_impossible_shard_fails_before_any_work(tmp_path, capsys, shard):
    code, err = _run_cli(tmp_path, _config(tmp_path), "--shard", shard, capsys=capsys)
    assert code == 2
    assert f"--shard {shard}" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"modle": {"name_or_path": "x"}}, "unknown key 'modle'"),
        ({"stages": ["forget", "finetune"]}, "'finetune' cannot come after 'forget'"),
        ({"tasks": {"forget": ["forget_nope"], "eval": ["forget_cola"], "finetune": ["forget_cola"]}},
         "unknown forget task 'forget_nope'"),
    ],
)
def test_cli_reports_one_line_and_creates_nothing(tmp_path, capsys, changes, expected):
    code, err = _run_cli(tmp_path, _config(tmp_path, **changes), capsys=capsys)
    assert code == 2
    assert expected in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "study").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_study_configs_load(path):
    config = load_run_config(path)
    assert config.tasks.forget and config.tasks.eval


def test_one_device_for_training_and_evaluation(tmp_path):
    from lm_forget.run.models import eval_pool
    from lm_forget.run.training import forget_config_kwargs

    def kwargs(config):
        return forget_config_kwargs(config, config.forget, stage="forget", tasks=["forget_cola"], num_examples=8,
                                    seed=0, init=None, output_dir=tmp_path / "out", resume=False)

    cpu = run_config_from_dict(_config(tmp_path))
    assert cpu.device == "cpu" and kwargs(cpu)["use_cpu"] is True and eval_pool(cpu).device == "cpu"
    gpu = run_config_from_dict(_config(tmp_path, device="cuda:1"))
    assert "use_cpu" not in kwargs(gpu) and eval_pool(gpu).device == "cuda:1"
    # one place for it: the study's device, which the unknown-key error names
    with pytest.raises(ConfigError, match=r"config.eval: unknown key 'device'\..* 'device' is a key of device\.$"):
        run_config_from_dict(_config(tmp_path, eval={"device": "cpu"}))
