"""The ``push`` step: one cell's forget adapter (with its model card and eval results) to the Hub."""

from __future__ import annotations

from typing import Any

from lm_forget.run.graph import Step


def run_push(step: Step, ctx: Any) -> dict[str, Any]:
    """Push one cell's forget adapter (with its model card and eval results) to the Hub."""
    from lm_forget.formats import find_results_file
    from lm_forget.hub.push import push_folder
    from lm_forget.run.cells import finetuned_eval_name, finetuned_for

    config, plan = ctx.config, ctx.plan
    cell = step.cell
    method, task = cell.method, cell.task
    n, seed = f"n{cell.n if cell.n is not None else 'all'}", cell.seed_label  # as the cell id spells them
    repo = f"{config.push.repo_prefix}-{method + '-' if method else ''}{task.removeprefix('forget_')}-{n}-{seed}"
    folder = plan.step(step.deps[0]).output
    # the card's accuracy table: the phases pretrained / finetuned / forget, from this study's lm-eval results
    finetuned = finetuned_eval_name(finetuned_for(plan.config, task), cell.finetune_seed)
    columns = {"pretrained": "eval_pretrained", "finetuned": finetuned, "forget": f"eval_forget/{cell.id}"}
    results = {col: find_results_file(plan.step(name).output) for col, name in columns.items()
               if name in plan.by_name and plan.step(name).is_done()}
    push = config.push
    url = push_folder(folder, repo, private=push.private, revision=push.revision,
                      eval_results=results or None, commit_message=f"lm-forget: forget {task} ({n}, {seed})",
                      base_model_id=push.base_model_id, suite_dataset=push.suite_dataset, timeout=push.timeout)
    out = {"repo": repo, "url": url}
    if push.collection:
        from lm_forget.hub.collection import add_to_collection

        out["collection"] = add_to_collection(
            push.collection, repo, f"{config.name}: forgot {task} ({n}, {seed}); cell {cell.id}",
            private=push.private, description=f"lm-forget study {config.name}", timeout=push.timeout)
    return out
