"""``ForgetConfig.data`` (the run's DataConfig), ``model_revision`` and ``tokenizer``: one name, parsed once."""

from __future__ import annotations

import pytest

from lm_forget.data.config import DataConfig
from lm_forget.errors import ConfigError
from lm_forget.train.cli import parse_config
from lm_forget.train.config import ForgetConfig

BASE = ["--model", "m", "--tasks", "forget_cola", "--output_dir", "out", "--use_cpu", "true"]


def test_data_from_the_command_line_as_json():
    config = parse_config([*BASE, "--data", '{"seed": 3, "train_size": 200}', "--num_examples", "100"])
    assert config.data_config == DataConfig(seed=3, train_size=200)
    assert config.data == DataConfig(seed=3, train_size=200).to_dict()  # recorded whole, defaults filled in


def test_default_pool_holds_the_requested_examples():
    assert ForgetConfig(model="m", tasks=["forget_cola"], num_examples=2500, use_cpu=True).data_config \
        == DataConfig(train_size=2500)
    assert ForgetConfig(model="m", tasks=["forget_cola"], num_examples=10, use_cpu=True).data_config == DataConfig()


@pytest.mark.parametrize("data, message", [
    ({"sed": 3}, "unknown key 'sed'. Did you mean 'seed'?"),
    ('{"seed": 3', "--data: not a JSON object"),
    ({"train_size": 50}, "--num_examples 100 exceeds the training pool"),
    ({"train_size": 0}, "train_size must be a positive number"),
])
def test_bad_data_settings_are_refused(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
        ForgetConfig(model="m", tasks=["forget_cola"], num_examples=100, data=data, use_cpu=True)


def test_revision_is_one_setting():
    config = ForgetConfig(model="m", tasks=["t"], model_init_kwargs={"revision": "v2"}, use_cpu=True)
    assert config.model_revision == "v2" and "revision" not in (config.model_init_kwargs or {})
    with pytest.raises(ConfigError, match="disagree"):
        ForgetConfig(model="m", tasks=["t"], model_revision="v1", model_init_kwargs={"revision": "v2"}, use_cpu=True)


def test_an_unknown_flag_names_the_closest_one():
    """No hint maps for flags that never shipped (issue 23): an unknown flag gets the plain error, which names
    the closest real flag and where the list is."""
    with pytest.raises(ConfigError, match=r"unknown flag --split_seed\. Did you mean 'data_seed'\?.*--help"):
        parse_config([*BASE, "--split_seed", "3"])


def test_data_seed_has_one_meaning_the_docs_sampling_seed():
    """transformers' --data_seed (its batch sampler's) would be a second data seed beside --data '{"seed": N}':
    refused, naming the flag that sets the docs' seed."""
    with pytest.raises(ConfigError, match=r"--data_seed 3: .*--data '\{\"seed\": 3\}'"):
        parse_config([*BASE, "--data_seed", "3"])
    assert parse_config([*BASE, "--data", '{"seed": 3}']).data == DataConfig(seed=3).to_dict()
