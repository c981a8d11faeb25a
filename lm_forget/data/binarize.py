"""Turn one source doc into a two-choice doc: gold + one hashed distractor, balanced gold position."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lm_forget.data import prompts
from lm_forget.data.hashing import content_key, stable_int
from lm_forget.data.normalize import dedup_key, normalize_text
from lm_forget.errors import DataError

_NULL_PROBE = "@@lm-forget-null-probe@@"


class DropDoc(Exception):
    """The source doc cannot be binarized; ``reason`` is counted in the task's report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Binarized:
    """A binarized doc before its split and id are assigned, plus what dedup needs."""

    key: str  # content hash of the source doc
    dedup: str  # normalized question identity
    doc: dict[str, Any]


def _fractional(target: Any) -> bool:
    """True for a label like ``0.5`` (or ``"0.5"``): a choice index that ``int()`` would silently truncate."""
    if isinstance(target, str):
        import re

        return re.fullmatch(r"\s*-?\d*\.\d*[1-9]\d*\s*", target) is not None
    return isinstance(target, float) and not target.is_integer()


def _gold_index(task, doc: dict[str, Any], text: Any, choices: list[str]) -> int:
    if isinstance(text, int):  # multi-context tasks: doc_to_text returns the gold index
        return text
    target = task.doc_to_target(doc)
    if isinstance(target, list):
        raise DropDoc("multiple_targets")
    if isinstance(target, str) and target in choices:
        return choices.index(target)
    if not isinstance(target, bool) and _fractional(target):
        raise DataError(f"label {target!r} is not a whole number (it is a choice index, and would be truncated); "
                        "fix the row's label or remove the row")
    if isinstance(target, str):
        if target.strip().lstrip("-").isdigit():
            return int(target)
        raise DropDoc("invalid_label")
    return int(target)


def check_nulls(task, source_doc: dict[str, Any]) -> None:
    """A DataError when lm-eval's prompt, choices or target read a field that is null (it would say "None")."""
    for key in [k for k, v in source_doc.items() if v is None]:
        probe = {**source_doc, key: _NULL_PROBE}
        try:
            rendered = repr([task.doc_to_text(probe), task.doc_to_choice(probe), task.doc_to_target(probe)])
        except Exception:  # the field is read, and a string does not fit where it is
            rendered = _NULL_PROBE
        if _NULL_PROBE in rendered:
            raise DataError(f"field {key!r} is null but lm-eval's prompt reads it (it would render as 'None'); "
                            "fill it in or remove the row")


def reads_empty_text(task, source_doc: dict[str, Any]) -> bool:
    """True when lm-eval's prompt reads a field that is empty (or only spaces): the doc asks nothing."""
    for key in [k for k, v in source_doc.items() if isinstance(v, str) and not v.strip()]:
        try:
            rendered = repr(task.doc_to_text({**source_doc, key: _NULL_PROBE}))
        except Exception:  # the prompt cannot render the probe: it does not read the field as text
            continue
        if _NULL_PROBE in rendered:
            return True
    return False


def binarize_doc(task, source_doc: dict[str, Any], *, task_name: str, seed: int, rewrite: str) -> Binarized:
    """Binarize ``source_doc`` as lm-eval's ``task`` renders it; raises DropDoc when it can't be."""
    check_nulls(task, source_doc)
    if reads_empty_text(task, source_doc):
        raise DropDoc("empty_text")
    text = task.doc_to_text(source_doc)
    choices = [str(c) for c in task.doc_to_choice(source_doc)]
    gold = _gold_index(task, source_doc, text, choices)
    if not 0 <= gold < len(choices):
        raise DropDoc("invalid_label")
    if len(choices) < 2:
        raise DropDoc("fewer_than_two_choices")
    key = content_key(source_doc)
    multi_context = isinstance(text, int)

    if multi_context:
        continuation = str(task.doc_to_target(source_doc))
        mode = "none"
        shown = choices
        informational = source_doc.get(task.config.doc_to_decontamination_query or "", "")
        prompt_text = informational if isinstance(informational, str) else ""
        question = continuation
    else:
        continuation = ""
        prompt_text = str(text)
        mode = prompts.detect(prompt_text, choices) if rewrite == "auto" else rewrite
        try:
            shown = prompts.option_texts(prompt_text, choices, mode)
        except prompts.RewriteError:
            raise DropDoc("prompt_rewrite_failed") from None
        question = prompt_text

    gold_norm = normalize_text(shown[gold])
    candidates = [i for i in range(len(choices)) if i != gold and normalize_text(shown[i]) != gold_norm]
    if not candidates:
        raise DropDoc("no_distinct_distractor")
    distractor = candidates[stable_int(seed, task_name, key, "distractor") % len(candidates)]
    if len(choices) == 2:
        kept = [0, 1]  # two-option sources keep their order
    elif stable_int(seed, task_name, key, "position") % 2 == 0:
        kept = [gold, distractor]
    else:
        kept = [distractor, gold]

    if multi_context:
        new_prompt, new_choices = prompt_text, [choices[k] for k in kept]
    else:
        try:
            rewritten = prompts.REWRITERS[mode](prompt_text, choices, kept)
        except prompts.RewriteError:
            raise DropDoc("prompt_rewrite_failed") from None
        new_prompt, new_choices = rewritten.prompt, rewritten.choices

    doc = {
        "prompt": new_prompt,
        "choices": new_choices,
        "label": kept.index(gold),
        "continuation": continuation,
        "target_delimiter": task.config.target_delimiter,
        "source_choices": choices,
        "source_label": gold,
        "kept": kept,
    }
    return Binarized(key=key, dedup=dedup_key(question, shown), doc=doc)
