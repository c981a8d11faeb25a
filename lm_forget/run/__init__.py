"""The study runner: one YAML config drives eval -> fine-tune -> eval -> forget -> eval -> analysis, resumably.

Public API::

    from lm_forget.run import load_run_config, build_plan, execute
    config = load_run_config("configs/study/llama2_suite.yaml")
    plan = build_plan(config)             # the step graph over the run directory
    execute(plan, shard=(1, 4))           # skip done steps, run the rest of shard 1 of 4
"""

from __future__ import annotations

from lm_forget.run.config import RunConfig, load_run_config, run_config_from_dict
from lm_forget.run.graph import Plan, Step, build_plan
from lm_forget.run.runner import execute
from lm_forget.run.shard import parse_shard

__all__ = [
    "Plan",
    "RunConfig",
    "Step",
    "build_plan",
    "execute",
    "load_run_config",
    "parse_shard",
    "run_config_from_dict",
]
