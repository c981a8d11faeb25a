"""Procedurally generated binarized task families for the offline demo.

Each family is one small function that lists every item it can make (prompt, correct answer,
distractor); :mod:`lm_forget.demo.suite` shuffles them by stable hash and splits train/test. The
families are chosen so that a tiny model learns them in seconds and so that they overlap in
instructive ways: ``compare`` and ``entail`` share their yes/no answers, ``category`` and ``sentiment``
are word lookups, ``pattern`` shares nothing with the others.

Adding a family is one function here and one line in ``FAMILIES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """One binarized question before splitting: the prompt, the right answer and one wrong answer."""

    prompt: str
    answer: str
    distractor: str
    # yes/no items keep a fixed answer order (as boolq/cola do); others are shuffled by hash
    fixed_order: tuple[str, str] | None = None


NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
CATEGORIES = {
    "animal": ("cat", "dog", "horse", "cow", "fox", "owl", "bear", "mouse"),
    "fruit": ("apple", "pear", "plum", "lemon", "mango", "grape", "peach", "melon"),
    "tool": ("hammer", "saw", "drill", "wrench", "chisel", "spade", "rake", "axe"),
    "vehicle": ("car", "bus", "truck", "boat", "train", "bike", "plane", "van"),
}
NAMES = ("ann", "bob", "cal", "dan", "eve", "fay", "gus", "hal")
TRAITS = ("tall", "kind", "rich", "old", "shy", "calm", "brave", "quick")
POSITIVE = ("good", "great", "fine", "lovely", "superb", "nice", "sweet", "bright", "warm", "happy")
NEGATIVE = ("bad", "awful", "poor", "dull", "grim", "nasty", "sour", "bleak", "cold", "sad")
COLORS = ("red", "blue", "green", "pink", "gray", "gold", "black", "white")
YES_NO = ("yes", "no")


def compare() -> list[Item]:
    """Comparisons of number words: "is seven more than three ?" -> yes / no."""
    items = []
    for i, a in enumerate(NUMBERS):
        for j, b in enumerate(NUMBERS):
            if i == j:
                continue
            for template, truth in (("is {a} more than {b} ?", i > j), ("is {a} less than {b} ?", i < j)):
                answer, other = ("yes", "no") if truth else ("no", "yes")
                items.append(Item(template.format(a=a, b=b), answer, other, YES_NO))
    return items


def category() -> list[Item]:
    """Word categories: "a mango is a kind of" -> fruit (distractor: another category)."""
    templates = ("a {noun} is a kind of", "the {noun} is some", "think of a {noun} , it is a", "my {noun} is a")
    names = list(CATEGORIES)
    items = []
    for cat, nouns in CATEGORIES.items():
        for noun in nouns:
            for t, template in enumerate(templates):
                # a fixed, hash-free distractor per (noun, template) that cycles through the other categories
                others = [c for c in names if c != cat]
                items.append(Item(template.format(noun=noun), cat, others[(t + nouns.index(noun)) % 3]))
    return items


def entail() -> list[Item]:
    """Entailment templates: "ann is tall and kind . so ann is kind ?" -> yes ("... so ann is rich ?" -> no)."""
    items = []
    for n, name in enumerate(NAMES):
        for i, first in enumerate(TRAITS):
            for j, second in enumerate(TRAITS):
                if i == j or (i + j + n) % 2:
                    continue  # a spread-out half of the pairs keeps the family small
                premise = f"{name} is {first} and {second} . so {name} is"
                entailed = (first, second)[(i + n) % 2]
                other = TRAITS[(i + j + n) % len(TRAITS)]
                if other in (first, second):
                    other = TRAITS[(max(i, j) + 1 + n) % len(TRAITS)]
                if other in (first, second):
                    continue
                items.append(Item(f"{premise} {entailed} ?", "yes", "no", YES_NO))
                items.append(Item(f"{premise} {other} ?", "no", "yes", YES_NO))
    return items


def sentiment() -> list[Item]:
    """Sentiment of an adjective in a template: "the film was grim . it was" -> bad / good."""
    templates = ("the film was {adj} . it was", "what a {adj} day . that is", "the food is {adj} , so it is",
                 "she felt {adj} . she felt", "a {adj} song , really", "the trip was {adj} , all in all")
    items = []
    for adj in POSITIVE + NEGATIVE:
        answer, other = ("good", "bad") if adj in POSITIVE else ("bad", "good")
        for template in templates:
            items.append(Item(template.format(adj=adj), answer, other))
    return items


def pattern() -> list[Item]:
    """Pattern rules: "red blue red blue red" -> blue (the alternation continues; distractor: red)."""
    items = []
    for x in COLORS:
        for y in COLORS:
            if x == y:
                continue
            items.append(Item(f"pattern : {x} {y} {x} {y} {x} then", y, x))
            items.append(Item(f"pattern : {x} {x} {y} {y} {x} then", x, y))
    return items


FAMILIES: dict[str, Callable[[], list[Item]]] = {
    "compare": compare,
    "category": category,
    "entail": entail,
    "sentiment": sentiment,
    "pattern": pattern,
}
