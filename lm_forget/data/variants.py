"""Format variants: the same docs of a suite task (same ids, same gold answer) asked in another format.

Each variant is a doc transform that lm-eval applies as the task's ``process_docs`` (``task_configs/formats/``),
so a variant task scores exactly the forget pool's or held-out docs of its suite task, reformatted:

- ``letters``: the two options shown as a lettered list ("A. ... B. ...") and the letter scored (MMLU-style);
- ``swapped``: the lettered list with the two options in the other order (the gold letter flips). Swapping the
  options alone would change nothing lm-eval scores (each option's log-likelihood is the same in either order),
  so the swap is applied where order is visible: in the list the letters name;
- ``instruction``: a neutral instruction prefixed to the context.

Used to ask whether forgetting a task carries over to the same items in another format (Joshi et al. 2024,
arXiv 2411.15477; Lynch et al. 2024, arXiv 2402.16835; JensUn, arXiv 2509.02820). A transform never changes
``id``, ``split``, ``task`` or the source fields, and records the variant under ``format``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lm_forget.data.docs import is_multi_context
from lm_forget.errors import ConfigError

INSTRUCTION = "Answer the following question with the correct option.\n\n"
LETTERS = ("A", "B")
_TRAILING_ANSWER = re.compile(r"\s*Answer:\s*$")

Doc = dict[str, Any]


def _full_option(doc: Mapping[str, Any], choice: int) -> str:
    """What option ``choice`` says in full: the continuation, or for multi-context docs the whole sentence."""
    if is_multi_context(doc):
        return doc["choices"][choice] + doc.get("target_delimiter", " ") + doc["continuation"]
    return doc["choices"][choice]


def letters_doc(doc: Mapping[str, Any]) -> Doc:
    """The options as "A. ..." / "B. ..." under the question, the letter as the scored continuation."""
    question = "" if is_multi_context(doc) else _TRAILING_ANSWER.sub("", doc["prompt"])
    listed = "\n".join(f"{letter}. {_full_option(doc, i)}" for i, letter in enumerate(LETTERS))
    prompt = f"{question}\n{listed}\nAnswer:" if question else f"{listed}\nAnswer:"
    return {**doc, "prompt": prompt, "choices": list(LETTERS), "continuation": "", "format": "letters"}


def swapped_doc(doc: Mapping[str, Any]) -> Doc:
    """The lettered list with the two options in the other order; the label follows the gold option."""
    reversed_doc = {**doc, "choices": list(reversed(doc["choices"])), "label": 1 - int(doc["label"]),
                    "kept": list(reversed(doc["kept"]))}
    return {**letters_doc(reversed_doc), "format": "swapped"}


def instruction_doc(doc: Mapping[str, Any]) -> Doc:
    """A neutral instruction before the context (before each context for multi-context docs)."""
    if is_multi_context(doc):
        return {**doc, "choices": [INSTRUCTION + c for c in doc["choices"]], "format": "instruction"}
    return {**doc, "prompt": INSTRUCTION + doc["prompt"], "format": "instruction"}


@dataclass(frozen=True)
class FormatVariant:
    """One registered format variant: its name, the doc transform, and a one-line description."""

    name: str
    transform: Callable[[Mapping[str, Any]], Doc]
    description: str
    #: the variant keeps multi-context scoring (winogrande's shared continuation) when its source has it
    keeps_multi_context: bool


VARIANTS = (
    FormatVariant("letters", letters_doc, "options shown as lettered choices (A./B.), the letter scored", False),
    FormatVariant("swapped", swapped_doc, "the lettered options in swapped order, the letter scored", False),
    FormatVariant("instruction", instruction_doc, "a neutral instruction prefixed to the context", True),
)
VARIANT_PREFIX = "fmt_"  #: variant task names must not match ``forget_*`` (that glob means the suite)
TAG = "lm_forget_formats"  #: the lm-eval tag of every variant task (does not match ``forget_*``)


def variant_names() -> list[str]:
    """The registered variants, in order."""
    return [v.name for v in VARIANTS]


def get_variant(name: str) -> FormatVariant:
    """The registered variant ``name``; a ConfigError names the known ones."""
    for variant in VARIANTS:
        if variant.name == name:
            return variant
    raise ConfigError(f"unknown format variant {name!r}; known: {', '.join(variant_names())}")


def variant_task_name(variant: str, task: str) -> str:
    """The lm-eval task name of ``variant`` of suite task ``task``: ``fmt_<variant>_<task>``."""
    return f"{VARIANT_PREFIX}{get_variant(variant).name}_{task}"


def _process(variant: str, dataset: Any) -> Any:
    transform = get_variant(variant).transform
    return dataset.map(transform, load_from_cache_file=False, desc=f"format variant {variant}")


def letters(dataset: Any) -> Any:
    """lm-eval ``process_docs`` of the ``letters`` variant."""
    return _process("letters", dataset)


def swapped(dataset: Any) -> Any:
    """lm-eval ``process_docs`` of the ``swapped`` variant."""
    return _process("swapped", dataset)


def instruction(dataset: Any) -> Any:
    """lm-eval ``process_docs`` of the ``instruction`` variant."""
    return _process("instruction", dataset)
