"""The protocol sections' inputs, read off a plan: per forget cell, its forget-set and held-out evaluations,
and the training-dynamics files of the fine-tune and forget steps (the analyze step's protocol sections)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lm_forget.run.cells import (
    cell_id,
    finetuned_eval_name,
    finetuned_for,
    forget_cells,
    forget_set_name,
    method_axis,
    method_id,
)
from lm_forget.run.graph import Plan


def protocol_cells(plan: Plan) -> list[Any]:
    """Per forget cell, the lm-eval folders of its forget-set and held-out evaluations (analysis input)."""
    return [cell for _, cell in method_protocol_cells(plan)]


def method_protocol_cells(plan: Plan) -> list[tuple[str | None, Any]]:
    """(method id or None, ``ProtocolCell``) of every forget cell, method-major."""
    from lm_forget.analysis.protocol_report import ProtocolCell

    by_name = plan.by_name
    cells = []
    for method, task, n, seed in forget_cells(plan.config):
        cid = cell_id(task, n, seed, method_id(method))
        cell = ProtocolCell(task=task, n=n, seed=seed)
        ft = finetuned_for(plan.config, task)  # the model this task was forgotten from
        names = {"forget_set": {"pretrained": forget_set_name("pretrained", n),
                                "finetuned": forget_set_name("finetuned", n, task=ft),
                                "forget": forget_set_name("forget", n, cid)},
                 "held_out": {"pretrained": "eval_pretrained", "finetuned": finetuned_eval_name(ft),
                              "forget": f"eval_forget/{cid}"}}
        for kind, phases in names.items():
            for phase, name in phases.items():
                step = by_name.get(name)
                if step is not None and step.is_done():
                    getattr(cell, kind)[phase] = step.output
        held = by_name.get(f"eval_forget/{cid}")
        if held is not None:
            cell.other_tasks = [t for t in held.settings["tasks"] if t != task]
        cells.append((method_id(method), cell))
    return cells


def dynamics_inputs(plan: Plan) -> dict[str, tuple[Path, list[Path]]]:
    """Per ``n<N>-s<seed>``: the fine-tune ``dynamics.parquet`` and the forget cells' (those that exist)."""
    from lm_forget.train.dynamics import DYNAMICS_FILE

    by_name = plan.by_name
    finetune = by_name.get("finetune")
    if finetune is None or not (finetune.output / DYNAMICS_FILE).is_file():
        return {}
    found = {}
    for method in method_axis(plan.config):
        mid = method_id(method)
        for n in plan.config.forget_sizes:
            for seed in plan.config.seeds:
                names = [f"forget/{cell_id(t, n, seed, mid)}" for t in plan.config.tasks.forget]
                cells = [by_name[name].output / DYNAMICS_FILE for name in names if name in by_name]
                cells = [p for p in cells if p.is_file()]
                if cells:
                    found[f"{mid + '-' if mid else ''}n{n}-s{seed}"] = (finetune.output / DYNAMICS_FILE, cells)
    return found
