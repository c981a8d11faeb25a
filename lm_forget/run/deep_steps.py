"""How deep is the forgetting? Three opt-in attack stages, added to a plan and executed.

- stage ``mia``: membership inference (:mod:`lm_forget.analysis.mia`) of each forgotten task's forget set against
  its non-members (:mod:`lm_forget.run.mia_docs`), for the pretrained model, every fine-tuned model and every
  forget cell (``mia/...``);
- stage ``eval_quantized``: each forget cell and its fine-tuned model (the equal-precision baseline) with the LoRA
  adapter merged and the weights quantized (``quantize.bits``, :mod:`lm_forget.run.quantized`), scored by lm-eval on
  the forget set and on the held-out split (``eval_quantized/...``);
- stage ``eval_formats``: the pretrained model, every fine-tuned model and every forget cell scored by lm-eval on the
  format variants (:mod:`lm_forget.data.variants`) of the forgotten task, on the forget set and on the held-out
  split (``eval_formats/...``; plain ``eval`` steps).

Without these stages nothing is added, so no existing step key changes. The stages' config checks:
:func:`check_deep`; their report section: :func:`lm_forget.analysis.deep_report.deep_section`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from lm_forget.errors import ConfigError
from lm_forget.run.cells import finetuned_for, forget_cells
from lm_forget.run.config import RunConfig
from lm_forget.run.keys import data_settings
from lm_forget.run.study_features import PlanContext, StudyFeature, register_feature

log = logging.getLogger(__name__)

MIA, QUANTIZED, FORMATS = "mia", "eval_quantized", "eval_formats"
DEEP_KINDS = ("mia", "quantized")  # step kinds of these stages (the analyze step reads them)
SCORES_FILE = "mia_scores.jsonl"


def _finetuned_suffix(task: str | None, seed: int | None) -> str:
    return (f"/{task}" if task else "") + (f"/f{seed}" if seed is not None else "")


def mia_name(phase: str, n: int | None = None, cid: str | None = None, task: str | None = None,
             finetune_seed: int | None = None) -> str:
    """``mia/<cell>`` (a forget cell), ``mia/pretrained/n<N>`` or ``mia/finetuned[/<task>][/f<seed>]/n<N>``."""
    if cid is not None:
        return f"{MIA}/{cid}"
    return f"{MIA}/{phase}{_finetuned_suffix(task, finetune_seed) if phase == 'finetuned' else ''}/n{n}"


def quantized_name(bits: int, cid: str | None = None, n: int | None = None, task: str | None = None,
                   finetune_seed: int | None = None) -> str:
    """``eval_quantized/<cell>/int<b>`` or ``eval_quantized/finetuned[/<task>][/f<seed>]/n<N>/int<b>``."""
    if cid is not None:
        return f"{QUANTIZED}/{cid}/int{bits}"
    return f"{QUANTIZED}/finetuned{_finetuned_suffix(task, finetune_seed)}/n{n}/int{bits}"


def formats_name(part: str, phase: str, n: int | None = None, cid: str | None = None, task: str | None = None,
                 finetune_seed: int | None = None) -> str:
    """``eval_formats/<cell>/<part>``, or ``eval_formats/<pretrained|finetuned[/<task>][/f<seed>]>[/n<N>]/<part>``
    (``n<N>`` for the forget set only)."""
    if cid is not None:
        return f"{FORMATS}/{cid}/{part}"
    model = phase + (_finetuned_suffix(task, finetune_seed) if phase == "finetuned" else "")
    return f"{FORMATS}/{model}" + (f"/n{n}" if part == "forget_set" else "") + f"/{part}"


def format_tasks(tasks: list[str]) -> list[str]:
    """Every format variant task of ``tasks``."""
    from lm_forget.data.variants import variant_names, variant_task_name

    return [variant_task_name(v, t) for t in tasks for v in variant_names()]


def _add_format_steps(add: Any, config: RunConfig, model: dict[str, Any], eval_common: dict[str, Any]) -> None:
    scoring = {k: v for k, v in eval_common.items() if k != "tasks"}
    whole = {k: v for k, v in scoring.items() if k != "limit"}  # forget sets are scored whole, as eval_forgetset
    models = [("pretrained", None, None, {"model": model}, ())]
    models += [("finetuned", t, fs, {}, _finetune_dep(config, t, fs)) for t, fs in _finetuned_models(config)]
    for phase, t, fs, extra, deps in models:
        tasks = format_tasks([t] if t else list(config.tasks.forget))
        add(formats_name("held_out", phase, task=t, finetune_seed=fs), "eval", FORMATS,
            {**extra, "phase": phase, **scoring, "tasks": tasks}, deps)
        for n in config.forget_sizes:
            pool = {"eval_on": "train", "train_size": int(n or config.data.train_size)}
            add(formats_name("forget_set", phase, n, task=t, finetune_seed=fs), "eval", FORMATS,
                {**extra, "phase": phase, **whole, "tasks": tasks, "forget_set": pool}, deps)
    for cell in forget_cells(config):
        tasks, deps = format_tasks([cell.task]), (f"forget/{cell.id}",)
        pool = {"eval_on": "train", "train_size": int(cell.n or config.data.train_size)}
        add(formats_name("held_out", "forget", cid=cell.id), "eval", FORMATS,
            {"phase": "forget", **scoring, "tasks": tasks}, deps, cell=cell)
        add(formats_name("forget_set", "forget", cid=cell.id), "eval", FORMATS,
            {"phase": "forget", **whole, "tasks": tasks, "forget_set": pool}, deps, cell=cell)


def _finetune_dep(config: RunConfig, task: str | None, seed: int | None) -> tuple[str, ...]:
    from lm_forget.run.cells import finetune_name

    return (finetune_name(task, seed),) if "finetune" in config.stages else ()


def _finetuned_models(config: RunConfig) -> list[tuple[str | None, int | None]]:
    tasks: list[str | None] = list(config.tasks.forget) if config.finetune.per_task else [None]
    return [(t, fs) for t in tasks for fs in config.finetune_seeds]


def add_deep_steps(add: Any, config: RunConfig, model: dict[str, Any], eval_common: dict[str, Any]) -> None:
    """The ``mia``, ``eval_quantized`` and ``eval_formats`` steps of the stages ``config`` lists (none without them)."""
    common = {"data": data_settings(config.data), "task_dirs": [str(p) for p in config.task_dir_paths],
              "limit": config.eval.limit}
    cells = forget_cells(config)
    if MIA in config.stages:
        from lm_forget.run.mia_docs import study_reach

        mia = {**common, "k": config.mia.k, "study_reach": study_reach(config)}
        for n in config.forget_sizes:
            add(mia_name("pretrained", n), "mia", MIA, {"model": model, "phase": "pretrained", **mia,
                                                       "tasks": list(config.tasks.forget), "forget_size": n})
            for t, fs in _finetuned_models(config):
                add(mia_name("finetuned", n, task=t, finetune_seed=fs), "mia", MIA,
                    {"phase": "finetuned", **mia, "tasks": [t] if t else list(config.tasks.forget),
                     "forget_size": n}, _finetune_dep(config, t, fs))
        for cell in cells:
            add(mia_name("forget", cid=cell.id), "mia", MIA, {"phase": "forget", **mia, "tasks": [cell.task],
                                                              "forget_size": cell.n}, (f"forget/{cell.id}",),
                cell=cell)
    if QUANTIZED in config.stages:
        scoring = {k: v for k, v in eval_common.items() if k not in ("tasks",)}
        for bits in config.quantize.bits:
            quant = {"bits": bits, "quantizer": config.quantize.quantizer}
            for n in config.forget_sizes:
                for t, fs in _finetuned_models(config):
                    add(quantized_name(bits, n=n, task=t, finetune_seed=fs), "quantized", QUANTIZED,
                        {"phase": "finetuned", **scoring, **quant, "tasks": [t] if t else list(config.tasks.forget),
                         "forget_size": n}, _finetune_dep(config, t, fs))
            for cell in cells:
                add(quantized_name(bits, cid=cell.id), "quantized", QUANTIZED,
                    {"phase": "forget", **scoring, **quant, "tasks": [cell.task], "forget_size": cell.n},
                    (f"forget/{cell.id}",), cell=cell)
    if FORMATS in config.stages:
        _add_format_steps(add, config, model, eval_common)


def _held_out(docs: list[dict[str, Any]], limit: float | None) -> list[dict[str, Any]]:
    """The held-out docs lm-eval scores under ``eval.limit`` (its own rule: a fraction is rounded up)."""
    if limit is None:
        return docs
    return docs[:int(math.ceil(len(docs) * limit)) if limit < 1 else int(limit)]


def run_mia(step: Any, ctx: Any) -> dict[str, Any]:
    """Score the forget set and its non-members (:mod:`lm_forget.run.mia_docs`) of each of the step's tasks under
    its model; write ``mia_scores.jsonl`` (a row per doc: ``set`` forget_set, same_split or held_out)."""
    from lm_eval.models.huggingface import HFLM

    from lm_forget.analysis.mia import MEMBERS, text_scores
    from lm_forget.data.api import load_docs
    from lm_forget.data.docs import gold_pair
    from lm_forget.io import atomic_dir, write_jsonl
    from lm_forget.run.mia_docs import same_split_docs

    settings, config = step.settings, ctx.config
    data = config.data  # the step's key holds its settings
    rows: list[dict[str, Any]] = []
    with ctx.pool.use(ctx.ref_for(step)) as (model, tokenizer):
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
        for task in settings["tasks"]:
            pool = load_docs(task, "train", task_dirs=config.task_dir_paths, data=data)
            members = pool[:settings["forget_size"] or len(pool)]
            same = same_split_docs(task, len(members), reach=settings["study_reach"],
                                   task_dirs=config.task_dir_paths, data=data)
            held = _held_out(load_docs(task, "test", task_dirs=config.task_dir_paths, data=data), settings["limit"])
            for name, docs in ((MEMBERS, members), ("same_split", same), ("held_out", held)):
                texts = ["".join(gold_pair(d)) for d in docs]
                for doc, scores in zip(docs, text_scores(lm, texts, settings["k"]), strict=True):
                    rows.append({"task": task, "id": str(doc["id"]), "set": name,
                                 "member": int(name == MEMBERS), **scores})
    with atomic_dir(step.output) as tmp:
        write_jsonl(tmp / SCORES_FILE, rows)
    log.info("%s: %d docs scored", step.name, len(rows))
    return {"docs": len(rows), "model_args": ctx.ref_for(step).model_args()}


def run_quantized(step: Any, ctx: Any) -> dict[str, Any]:
    """Merge, quantize and score the step's model with lm-eval: ``output/forget_set`` and ``output/held_out``."""
    from lm_forget.run.evaluate import evaluate_model
    from lm_forget.run.quantized import QuantizedPool

    settings, config = step.settings, ctx.config
    ctx.pool.close()  # the full-precision base is not needed while a quantized copy is scored
    ref = ctx.ref_for(step)
    tasks = settings["tasks"]
    forget_set = {"eval_on": "train", "train_size": int(settings["forget_size"] or config.data.train_size)}
    scores: dict[str, Any] = {}
    with QuantizedPool(ref, settings["bits"], device=config.device, workdir=step.dir) as pool:
        for part, docs in (("forget_set", forget_set), ("held_out", None)):
            scores[part] = evaluate_model(config, ref, tasks, step.output / part, pool=pool,
                                          manager=ctx.manager(tasks, docs), task_objects=ctx.tasks(tasks, docs),
                                          docs=docs)
        quantizer = pool.description
    return {"scores": scores, "model_args": ref.model_args(), "quantizer": quantizer}


def deep_cells(plan: Any) -> list[Any]:
    """Per forget cell: the folders the report's "How deep is the forgetting?" section reads."""
    from lm_forget.analysis.deep_report import DeepCell
    from lm_forget.run.cells import finetuned_eval_name, forget_set_name

    by_name, config = plan.by_name, plan.config

    def done(name: str) -> Path | None:
        step = by_name.get(name)
        return step.output if step is not None and step.is_done() else None

    cells = []
    for c in forget_cells(config):
        ft = finetuned_for(config, c.task)
        fs = c.finetune_seed
        cell = DeepCell(cell=c.id, task=c.task, n=c.n, method=c.method, seed=c.replicate)
        cell.evals = {k: v for k, v in {
            ("forget_set", "finetuned"): done(forget_set_name("finetuned", c.n, task=ft, finetune_seed=fs)),
            ("forget_set", "forget"): done(forget_set_name("forget", c.n, c.id)),
            ("held_out", "finetuned"): done(finetuned_eval_name(ft, fs)),
            ("held_out", "forget"): done(f"eval_forget/{c.id}"),
        }.items() if v is not None}
        for bits in (config.quantize.bits if QUANTIZED in config.stages else []):
            for phase, name in (("finetuned", quantized_name(bits, n=c.n, task=ft, finetune_seed=fs)),
                                ("forget", quantized_name(bits, cid=c.id))):
                folder = done(name)
                if folder is not None:
                    for part in ("forget_set", "held_out"):
                        cell.evals[(part, f"{phase}_int{bits}")] = folder / part
        if FORMATS in config.stages:
            for part in ("forget_set", "held_out"):
                for phase, name in (("pretrained", formats_name(part, "pretrained", c.n)),
                                    ("finetuned", formats_name(part, "finetuned", c.n, task=ft, finetune_seed=fs)),
                                    ("forget", formats_name(part, "forget", cid=c.id))):
                    folder = done(name)
                    if folder is not None:
                        cell.formats[(part, phase)] = folder
        if MIA in config.stages:
            for phase, name in (("pretrained", mia_name("pretrained", c.n)),
                                ("finetuned", mia_name("finetuned", c.n, task=ft, finetune_seed=fs)),
                                ("forget", mia_name("forget", cid=c.id))):
                folder = done(name)
                if folder is not None:
                    cell.mia[phase] = folder / SCORES_FILE
        cells.append(cell)
    return cells


def check_deep(config: RunConfig) -> None:
    """The hf backend for both stages, bits each listed once, and the quantizer installed."""
    stages = [s for s in ("mia", "eval_quantized") if s in config.stages]
    if stages and config.eval.backend != "hf":
        raise ConfigError(f"stages: {', '.join(stages)} score the model in this process (transformers); set "
                          f"eval.backend: hf or drop {' and '.join(stages)}.")
    if "eval_quantized" not in config.stages:
        return
    from lm_forget.run.quantized import BITS, require_quantizer

    bits = list(config.quantize.bits)
    if not bits or len(set(bits)) != len(bits) or any(b not in BITS for b in bits):
        raise ConfigError(f"quantize.bits: {bits}; list each of {', '.join(map(str, BITS))} at most once.")
    require_quantizer(config.quantize.quantizer)


def _after_forget(ctx: PlanContext) -> None:
    add_deep_steps(ctx.add, ctx.config, ctx.model, ctx.eval_common)


register_feature(StudyFeature("deep", order=40, after_forget=_after_forget, check=check_deep, kinds=DEEP_KINDS))
