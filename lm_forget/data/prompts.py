"""Prompt rewrites for sources whose prompt names the options itself.

A binarized prompt must not mention options that were dropped. Each rewriter takes the rendered
source prompt, the source choices and the kept indices (binarized order), and returns the new prompt,
the new choices and the option texts used for deduplication — or raises ``RewriteError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


class RewriteError(ValueError):
    """The prompt does not have the shape the rewriter expects (the doc is dropped and counted)."""


@dataclass(frozen=True)
class Rewritten:
    prompt: str
    choices: list[str]


_LETTER_LINE = re.compile(r"^(?P<label>\(?[A-Za-z0-9]{1,2}[.):]\)?)[ \t]+(?P<text>.*)$")


def _strip_label(label: str) -> str:
    return label.strip().strip("().:").strip()


def is_lettered(choices: list[str]) -> bool:
    """Choices like ['A', 'B', 'C'] (or ' A'): the options' texts must live in the prompt."""
    return len(choices) >= 2 and all(re.fullmatch(r"\s*[A-Za-z0-9]{1,2}\s*", c) for c in choices)


def _find_block(lines: list[str], wanted: list[str], by_label: bool) -> tuple[int, list[str], list[str]] | None:
    for start in range(len(lines) - len(wanted) + 1):
        labels, texts = [], []
        for offset, expected in enumerate(wanted):
            match = _LETTER_LINE.match(lines[start + offset])
            if not match:
                break
            found = _strip_label(match.group("label")) if by_label else match.group("text").strip()
            if found != expected:
                break
            labels.append(match.group("label"))
            texts.append(match.group("text"))
        else:
            return start, labels, texts
    return None


def option_lines(prompt: str, choices: list[str]) -> tuple[int, list[str], list[str]]:
    """Find the lettered option block: (index of its first line, its labels, its texts).

    The block has one line per choice, either labelled by the choices themselves (choices are letters,
    e.g. commonsense_qa) or carrying the choices' texts (e.g. logiqa's "A. <option>", even when an
    option is itself a single letter).
    """
    lines = prompt.split("\n")
    wanted = [c.strip() for c in choices]
    modes = (True, False) if is_lettered(choices) else (False,)
    for by_label in modes:
        block = _find_block(lines, wanted, by_label)
        if block is not None:
            return block
    raise RewriteError(f"no lettered option block for {wanted} found in the prompt")


def _labels_are_choices(prompt: str, choices: list[str]) -> bool:
    return is_lettered(choices) and _find_block(prompt.split("\n"), [c.strip() for c in choices], True) is not None


def lettered(prompt: str, choices: list[str], kept: list[int]) -> Rewritten:
    """Keep the two kept options' lines, relabelled with the block's first two labels (A/B)."""
    start, labels, texts = option_lines(prompt, choices)
    lines = prompt.split("\n")
    lines[start : start + len(choices)] = [f"{labels[pos]} {texts[k]}" for pos, k in enumerate(kept)]
    new_choices = [choices[0], choices[1]] if _labels_are_choices(prompt, choices) else [choices[k] for k in kept]
    return Rewritten("\n".join(lines), new_choices)


def _inline_variants(options: list[str]) -> list[str]:
    head = ", ".join(options[:-1])
    return [f"{head}, or {options[-1]}", f"{head} or {options[-1]}", f"{head}, {options[-1]}"]


def inline_list(prompt: str, choices: list[str], kept: list[int]) -> Rewritten:
    """Replace an inline list of all options ("True, False, or Neither") by the two kept, in source order."""
    for variant in _inline_variants(choices):
        if prompt.count(variant) == 1:
            first, second = sorted(kept)
            return Rewritten(prompt.replace(variant, f"{choices[first]} or {choices[second]}"),
                             [choices[k] for k in kept])
    raise RewriteError(f"no inline list of the options {choices} found in the prompt")


def plain(prompt: str, choices: list[str], kept: list[int]) -> Rewritten:
    """The prompt does not name the options: keep it, keep the two choices."""
    return Rewritten(prompt, [choices[k] for k in kept])


def detect(prompt: str, choices: list[str]) -> str:
    """The rewrite a prompt needs: 'lettered', 'inline_list' or 'none' (used by ``rewrite: auto``)."""
    if len(choices) >= 3 or is_lettered(choices):
        try:
            option_lines(prompt, choices)
            return "lettered"
        except RewriteError:
            pass
    if len(choices) >= 3 and any(v in prompt for v in _inline_variants(choices)):
        return "inline_list"
    return "none"


REWRITERS: dict[str, Callable[[str, list[str], list[int]], Rewritten]] = {
    "none": plain,
    "lettered": lettered,
    "inline_list": inline_list,
}


def option_texts(prompt: str, choices: list[str], rewrite: str) -> list[str]:
    """The options as a reader sees them (lettered: the texts in the prompt), for dedup and distractors."""
    if rewrite == "lettered":
        return option_lines(prompt, choices)[2]
    return list(choices)
