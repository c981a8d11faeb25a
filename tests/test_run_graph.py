"""The step graph: keys hash exactly what outputs depend on; shards partition the cells; writes are atomic."""

from __future__ import annotations

import copy
import json

import pytest

from lm_forget.io import atomic_dir, atomic_write_json
from lm_forget.run import build_plan, execute, run_config_from_dict
from lm_forget.run.cells import Cell
from lm_forget.run.key_schema import KEY_SCHEMA_FIELD, KEY_SCHEMA_VERSION
from lm_forget.run.shard import shard_cells
from lm_forget.run.training import drop_incomplete_checkpoints, last_checkpoint

BASE = {
    "model": {"name_or_path": "some/model"},
    "tasks": {"finetune": ["forget_cola", "forget_rte"], "forget": ["forget_cola", "forget_rte", "forget_boolq"],
              "eval": ["forget_cola", "forget_rte", "forget_boolq"]},
    "stages": ["eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "features", "analyze"],
    "seeds": [0, 1],
    "forget": {"num_examples": [100, 1000]},
}


def _plan(tmp_path, **changes):
    data = copy.deepcopy(BASE)
    data["run_dir"] = str(tmp_path / "run")
    for section, value in changes.items():
        if isinstance(value, dict):
            data.setdefault(section, {}).update(value)
        else:
            data[section] = value
    return build_plan(run_config_from_dict(data))


def _keys(plan):
    return {s.name: s.key for s in plan.steps}


def test_plan_shape_and_order(tmp_path):
    plan = _plan(tmp_path)
    assert len(plan.cells) == 3 * 2 * 2  # tasks x sizes x seeds
    stages = [s.stage for s in plan.steps]
    assert stages == sorted(stages, key=["eval_pretrained", "finetune", "eval_finetuned", "forget",
                                         "eval_forget", "features", "analyze"].index)
    assert plan.step("eval_forget/forget_rte/n100/s1").deps == ("forget/forget_rte/n100/s1",)
    assert plan.step("forget/forget_rte/n100/s1").deps == ("finetune",)
    assert len({s.dir for s in plan.steps}) == len(plan.steps)


def test_plan_is_queried_by_typed_cells_and_names_are_rendered_from_them(tmp_path):
    plan = _plan(tmp_path)
    steps = plan.steps_for("eval_forget", task="forget_rte", n=100)
    folders = ("eval_forget", "eval_forgetset")  # held-out and forget-set scoring: one stage
    assert [s.name for s in steps] == [f"{folder}/forget_rte/n100/s{seed}" for folder in folders for seed in (0, 1)]
    cell = steps[1].cell
    assert cell == Cell(None, "forget_rte", 100, 1) and (cell.task, cell.n, cell.seed) == ("forget_rte", 100, 1)
    assert str(cell) == cell.id == "forget_rte/n100/s1" and cell.seed_label == "s1"
    assert {s.stage for s in plan.steps_for(seed=1, task="forget_rte", n=100)} == {"forget", "eval_forget"}
    assert all(s.cell is None for s in plan.steps_for("eval_pretrained"))  # shared steps have no cell...
    assert plan.steps_for("eval_pretrained", task="forget_rte") == []  # ...so a cell query never returns them
    assert plan.steps_for(task="forget_rte", method="npo") == []
    axis = build_plan(run_config_from_dict({**copy.deepcopy(BASE), "run_dir": str(tmp_path / "axis"),
                                            "seeds": {"forget": [0], "finetune": [1, 2]}}))
    assert Cell(None, "forget_cola", 1000, 0, 2).id == "forget_cola/n1000/f2s0" in {c.id for c in axis.cells}
    assert {s.cell.finetune_seed for s in axis.steps_for("forget", task="forget_cola", n=1000)} == {1, 2}


def test_keys_follow_exactly_what_outputs_depend_on(tmp_path):
    base = _keys(_plan(tmp_path))
    assert base == _keys(_plan(tmp_path))  # stable

    lr = _keys(_plan(tmp_path, finetune={"learning_rate": 1e-3}))
    assert lr["eval_pretrained"] == base["eval_pretrained"]
    changed = {n for n in base if lr[n] != base[n]}
    assert "finetune" in changed and "forget/forget_cola/n100/s0" in changed
    assert "eval_forget/forget_cola/n100/s0" in changed and "analyze" in changed  # downstream follows

    speed = _keys(_plan(tmp_path, eval={"batch_size": 64}, device="cuda:1"))
    assert speed == base  # speed-only settings never invalidate results

    seeds = _keys(_plan(tmp_path, seeds=[0, 1, 2]))
    assert seeds["forget/forget_cola/n100/s0"] == base["forget/forget_cola/n100/s0"]  # adding a seed adds cells
    assert "forget/forget_cola/n100/s2" in seeds and seeds["analyze"] != base["analyze"]


def test_shards_partition_cells_deterministically():
    cells = [f"t{i}/n100/s{s}" for i in range(7) for s in range(3)]
    shards = [shard_cells(cells, (i, 4)) for i in range(1, 5)]
    assert sorted(c for shard in shards for c in shard) == sorted(cells)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert shards == [shard_cells(list(reversed(cells)), (i, 4)) for i in range(1, 5)]  # order-independent


def test_dry_run_lists_steps_without_touching_disk(tmp_path):
    plan = _plan(tmp_path)
    summary = execute(plan, shard=(2, 3), dry_run=True)
    statuses = {r["step"]: r["status"] for r in summary.rows}
    assert statuses["finetune"] == "will run"
    assert sum(s == "other shard" for s in statuses.values()) > 0
    assert not (tmp_path / "run").exists()

    done = plan.step("eval_pretrained")
    atomic_write_json(done.done_path, {"step": done.name, KEY_SCHEMA_FIELD: KEY_SCHEMA_VERSION})
    assert {r["step"]: r["status"] for r in execute(plan, dry_run=True).rows}["eval_pretrained"] == "done"


def test_atomic_dir_never_leaves_half_results(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "results.json").write_text("{")
        raise RuntimeError("killed")
    assert not target.exists()
    with atomic_dir(target) as tmp:  # the next attempt clears the debris and lands in one rename
        (tmp / "results.json").write_text("{}")
    assert json.loads((target / "results.json").read_text()) == {}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_resume_skips_checkpoints_cut_mid_write(tmp_path):
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "output" / "checkpoints"
    # complete: weights + trainer_state.json; cut: no state (6), a torn state (8), torn weights (10)
    for step, state in ((2, "{}"), (4, "{}"), (6, None), (8, '{"global_st'), (10, "{}")):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        save_file({"w": torch.zeros(4)}, str(folder / f"checkpoint-{step}" / "adapter_model.safetensors"))
        if state is not None:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    weights = folder / "checkpoint-10" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4])
    assert last_checkpoint(tmp_path / "output").name == "checkpoint-4"
    drop_incomplete_checkpoints(tmp_path / "output")
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert last_checkpoint(tmp_path / "nothing") is None
