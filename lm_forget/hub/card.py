"""The model card of a run folder: ``huggingface_hub.ModelCard`` rendered from ``hub_cards/adapter_card.md``.

Metadata (base_model, library_name, tags, datasets, license, model-index) lives in ``ModelCardData``;
nobody formats YAML by hand. Values come from the folder's ``forget_config.json`` and, when given,
lm_eval ``results.json`` files.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_forget.errors import ConfigError, DataError
from lm_forget.formats import ADAPTER_CONFIG_FILE, CARD_FILE, RUN_STATE_FILE
from lm_forget.hub.base_model import hub_base_model
from lm_forget.paths import hub_cards_dir

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "adapter_card.md"
CARD_TAGS = ["lm-forget", "unlearning", "forgetting", "random-labels"]
#: The tags TRL's SFTTrainer puts on the card it writes (its public create_model_card; a test keeps them in sync)
TRL_TAGS = ["trl", "sft"]
#: The phase a run's own results are, per stage: the same phase names as the study's folders, the analysis' CSV
#: columns (``acc_finetuned``...) and a study's push keys
STAGE_PHASES = {"finetune": "finetuned", "forget": "forget", "relearn": "relearn"}
PHASES = ("pretrained", *STAGE_PHASES.values())  #: the columns a card's accuracy table can have
LABEL_DESCRIPTIONS = {  # by forgetting method (the record's ``method``; None: fine-tuning and relearning)
    None: "trained on the true labels",
    "random_labels": "trained on random labels, each drawn uniformly from the two choices by a stable hash of "
    "(seed, task, doc id)",
    "flipped_labels": "trained on the wrong choice of every example (flipped labels)",
}
#: Training settings shown in the card (all of them are in forget_config.json)
CARD_SETTINGS = (
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "lr_scheduler_type", "warmup_steps", "weight_decay", "optim",
    "max_length", "bf16", "seed",
)
#: shown only when they are not at their defaults: the LoRA variant and a quantized (QLoRA) base
CARD_PEFT_SETTINGS = ("use_rslora", "use_dora", "lora_modules_to_save", "load_in_4bit", "load_in_8bit",
                      "bnb_4bit_quant_type", "use_bnb_nested_quant")

EvalSource = str | Path | Mapping[str, Any]


def read_eval_accuracies(source: EvalSource) -> dict[str, float]:
    """``{task: acc}`` from an lm_eval ``results.json`` (path or parsed dict)."""
    data = _read_json(source) if not isinstance(source, Mapping) else source
    results = data.get("results")
    if not isinstance(results, Mapping):
        raise DataError(f"{_where(source)} is not an lm_eval results file (no 'results' mapping)")
    accs = {}
    for task, metrics in results.items():
        for key in ("acc,none", "acc"):
            if isinstance(metrics, Mapping) and isinstance(metrics.get(key), (int, float)):
                accs[str(task)] = float(metrics[key])
                break
            if isinstance(metrics, Mapping) and key in metrics and metrics[key] is None:
                accs[str(task)] = math.nan  # undefined (our eval_results.json writes NaN as null)
                break
    return accs


def normalize_eval_sources(
    eval_results: EvalSource | Mapping[str, EvalSource] | None, stage: str
) -> dict[str, dict[str, float]]:
    """``{phase: {task: acc}}``; an unnamed results file is the run's own (its stage's phase)."""
    if eval_results is None:
        return {}
    own = STAGE_PHASES.get(stage, stage)
    if isinstance(eval_results, (str, Path)) or (isinstance(eval_results, Mapping) and "results" in eval_results):
        return {own: read_eval_accuracies(eval_results)}
    columns = {}
    for name, source in eval_results.items():
        columns[own if name in ("", stage) else str(name)] = read_eval_accuracies(source)
    return columns


def render_card(
    folder: str | Path,
    *,
    repo_id: str | None = None,
    eval_results: EvalSource | Mapping[str, EvalSource] | None = None,
    license: str = "other",
    base_model_id: str | None = None,
    suite_dataset: str | None = None,
) -> Any:
    """A ``ModelCard`` for the run in ``folder`` (reads its forget_config.json).

    ``base_model`` is a Hub id (``base_model_id``, the model itself, or what its local folder records) or
    left out; ``suite_dataset`` is the Hub dataset of the suite (``lm-forget tasks push``): the model-index
    cites it, one config per task. Without it the card has the table but no model-index (whose dataset ids
    must be Hub ids).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    folder = Path(folder)
    state = _read_json(folder / RUN_STATE_FILE)
    gguf = _gguf(state)
    hub_base = hub_base_model(state.get("model"), base_model_id or state.get("base_model_id")
                              or (gguf or {}).get("hub_id"), state.get("gguf_file"))
    stage = state.get("stage", "forget")
    model_id = repo_id or folder.name
    is_adapter = (folder / ADAPTER_CONFIG_FILE).is_file()
    columns = normalize_eval_sources(eval_results, stage)
    own_column = STAGE_PHASES.get(stage, stage)
    own = columns.get(own_column, {})
    # model-index: the accuracy of *this* model only (the table also shows baselines)
    index = [
        EvalResult(
            task_type="multiple-choice",
            task_name="Multiple choice (binarized)",
            dataset_type=suite_dataset,
            dataset_name=f"lm-forget {task}",
            dataset_config=task,
            dataset_split="test",
            metric_type="accuracy",
            metric_name="acc",
            metric_value=round(acc, 4),
            source_name="lm-evaluation-harness",
            source_url="https://github.com/EleutherAI/lm-evaluation-harness",
        )
        for task, acc in sorted(own.items()) if math.isfinite(acc)  # an undefined metric is not published as NaN
    ] if suite_dataset else []
    tags = library_tags(folder, hub_base, is_adapter) + [*CARD_TAGS, f"stage-{stage}", *state.get("tasks", [])]
    card_data = ModelCardData(
        base_model=hub_base,
        library_name="peft" if is_adapter else "transformers",
        pipeline_tag="text-generation",
        tags=list(dict.fromkeys(tags)),
        datasets=state.get("datasets") or None,
        license=license,
        model_name=model_id,
        eval_results=index or None,
    )
    tasks = sorted({task for accs in columns.values() for task in accs})
    eval_rows = [
        {"task": task, "values": [_fmt(columns[c].get(task)) for c in columns]} for task in tasks
    ]
    settings = state.get("settings", {})
    training_settings = [(k, settings[k]) for k in CARD_SETTINGS if k in settings]
    training_settings += [("use_lora", state.get("use_lora")), ("lora", state.get("lora"))]
    training_settings += _peft_settings(settings)
    training_settings += [("global_step", state.get("global_step"))]
    # a GGUF base is named by its Hub id or its file name, never by the local folder it was read from
    base = hub_base or (gguf["file"] if gguf else state.get("model"))
    model_args = f"pretrained={base},peft={model_id}" if is_adapter else f"pretrained={model_id}"
    eval_command = f"lm_eval --model hf --model_args {model_args} --tasks {','.join(state.get('tasks', []))}"
    if is_adapter:
        usage = (
            "from peft import AutoPeftModelForCausalLM\n\n"
            f'model = AutoPeftModelForCausalLM.from_pretrained("{model_id}")'
        )
    else:
        usage = (
            "from transformers import AutoModelForCausalLM\n\n"
            f'model = AutoModelForCausalLM.from_pretrained("{model_id}")'
        )
    return ModelCard.from_template(
        card_data,
        template_path=str(hub_cards_dir() / TEMPLATE_NAME),
        model_id=model_id,
        base_model_text=base,
        base_model_on_hub=hub_base is not None,
        gguf=gguf,
        summary=_summary(stage, state),
        artifact="LoRA adapter" if is_adapter else "model",
        stage=stage,
        label_description=LABEL_DESCRIPTIONS.get(state.get("method"), f"trained with the forgetting method "
                                                 f"{state.get('method')} (its loss on the true labels)"),
        tasks=state.get("tasks", []),
        num_train_examples=sum((state.get("examples_per_task") or {}).values()),
        num_examples=state.get("num_examples"),
        seed=state.get("seed"),
        data_seed=(state.get("data") or {}).get("seed"),
        labels_hash=state.get("labels_hash"),
        init_adapter=state.get("init_adapter"),
        eval_columns=list(columns),
        eval_rows=eval_rows,
        eval_command=eval_command,
        training_settings=training_settings,
        versions=sorted((state.get("versions") or {}).items()),
        usage=usage,
    )


def _gguf(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The GGUF base of a run (file name, quantization, recorded Hub id), or None for a safetensors base."""
    if not state.get("gguf_file"):
        return None
    recorded = dict(state.get("gguf") or {})
    return {"file": Path(str(state["gguf_file"])).name, "quantization": recorded.get("quantization"),
            "hub_id": recorded.get("hub_id"), "name": recorded.get("name")}


def _peft_settings(settings: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The LoRA-variant and quantization settings that differ from their defaults (+ a 4-bit base's data type)."""
    from lm_forget.train.peft_settings import KEY_NEUTRAL_DEFAULTS

    shown = [(k, settings[k]) for k in CARD_PEFT_SETTINGS if k in settings and settings[k] != KEY_NEUTRAL_DEFAULTS[k]]
    if settings.get("load_in_4bit") and "bnb_4bit_quant_type" not in dict(shown):
        shown.append(("bnb_4bit_quant_type", settings.get("bnb_4bit_quant_type", "nf4")))
    return shown


def library_tags(folder: Path, hub_base: str | None, is_adapter: bool) -> list[str]:
    """The tags PEFT's and TRL's own cards carry (``base_model:adapter:<id>``, ``lora``, ``trl``, ``sft``...).

    Tags already in the folder's card (PEFT writes one on save) are kept, except ``base_model:*`` tags,
    which are rebuilt from the Hub id (PEFT's would name a local path).
    """
    tags: list[str] = []
    card = folder / CARD_FILE
    if card.is_file():
        from huggingface_hub import ModelCard

        try:
            tags += [t for t in (ModelCard.load(card).data.tags or []) if not str(t).startswith("base_model:")]
        except Exception as exc:  # a hand-edited card must not block rendering a new one
            logger.debug("could not read the tags of %s: %s", card, exc)
    if is_adapter:
        if hub_base:
            tags.append(f"base_model:adapter:{hub_base}")
        peft_type = str(_read_json(folder / ADAPTER_CONFIG_FILE).get("peft_type") or "lora")
        tags += [peft_type.lower(), "transformers"]
    elif hub_base:
        tags.append(f"base_model:finetune:{hub_base}")
    tags += TRL_TAGS
    return list(dict.fromkeys(str(t) for t in tags))


def _summary(stage: str, state: Mapping[str, Any]) -> str:
    tasks = ", ".join(state.get("tasks", []))
    if stage == "finetune":
        return f"Fine-tuned on the binarized {tasks} task(s) of the lm-forget suite (true labels)."
    if stage == "relearn":
        return f"Fine-tuned, forgotten, then fine-tuned again on the true labels of {tasks} (relearning)."
    if state.get("method") == "flipped_labels":
        return f"Fine-tuned, then trained on flipped labels of {tasks} (the paper's flipped-label variant)."
    if state.get("method") != "random_labels":
        return f"Fine-tuned, then *forgotten* on {tasks} with the forgetting method {state.get('method')}."
    return (f"Fine-tuned, then *forgotten* by a second pass on random labels of {tasks}: the setting of "
            "the paper's random-label forgetting experiments.")


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if math.isfinite(value) else "NaN (undefined)"


def _read_json(source: str | Path) -> dict[str, Any]:
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"{path} not found; pass the output folder of `lm-forget train` or an lm_eval results.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from exc


def _where(source: EvalSource) -> str:
    return str(source) if isinstance(source, (str, Path)) else "the eval results"
