"""Procedurally generated binarized task families for the offline demo.

Each family is one small function that lists every item it can make (prompt, correct answer,
distractor); :mod:`lm_forget.demo.suite` orders them by stable hash, interleaves the answers (so every
split and every forget set is balanced) and splits train/test. The families are chosen so that

- a tiny random-init model learns each of them to >= 0.9 held-out accuracy in a few epochs: the answer is
  a lookup of one key word that the training split shows in many contexts (templates, ids), or a copy rule;
- every lookup family answers with the same two words in every doc (good/bad, natural/made, yes/no), so a
  random-label forget pass can drive it to chance (a family whose answer is one of several words keeps
  the gold answer as the most likely one when half of its labels are random); the copy rules (``motif``,
  ``echo``) answer with one of two words of the prompt, which random labels also take to chance;
- they overlap in instructive ways: ``kind`` and ``badge`` share their key words, ``badge`` and ``parity``
  share yes/no, ``echo`` copies animal and fruit nouns that ``kind`` and ``badge`` ask about; ``motif``
  shares nothing with the others;
- they cover two of the paper's behaviours after forgetting: every lookup family's held-out docs fall to
  pretrained, ``echo``'s (a copy rule over very diverse inputs) stay partly above it (docs/reliability.md,
  "Demo");
- every doc carries its own id word, so a random-label forget pass can memorize its labels doc by doc: without
  one, the model learns the majority random label of each key word (32 adjectives, 48 nouns, 16 numbers), and
  the forget set's accuracy is then the share of key words whose majority happens to agree with the gold
  answer (0.31-0.58 measured), never decidably near chance.

Adding a family is one function here and one line in ``FAMILIES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lm_forget.data.hashing import stable_int


@dataclass(frozen=True)
class Item:
    """One binarized question before splitting: the prompt, the right answer and one wrong answer."""

    prompt: str
    answer: str
    distractor: str
    # yes/no items keep a fixed answer order (as boolq/cola do); others are shuffled by hash
    fixed_order: tuple[str, str] | None = None
    # True: always a held-out doc (the suite puts these items first, so they fill the test split)
    held_out: bool = False


NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
           "thirteen", "fourteen", "fifteen", "sixteen")
CATEGORIES = {
    "animal": ("cat", "dog", "horse", "cow", "fox", "owl", "bear", "mouse", "wolf", "goat", "duck", "frog"),
    "fruit": ("apple", "pear", "plum", "lemon", "mango", "grape", "peach", "melon", "lime", "fig", "kiwi", "date"),
    "tool": ("hammer", "saw", "drill", "wrench", "chisel", "spade", "rake", "axe", "file", "vise", "awl", "plane"),
    "vehicle": ("car", "bus", "truck", "boat", "train", "bike", "jet", "van", "tram", "cab", "ship", "sled"),
}
NATURAL = ("animal", "fruit")
POSITIVE = ("good", "great", "fine", "lovely", "superb", "nice", "sweet", "bright", "warm", "happy", "merry", "neat",
            "grand", "fair", "kind", "glad")
NEGATIVE = ("bad", "awful", "poor", "dull", "grim", "nasty", "sour", "bleak", "cold", "sad", "vile", "harsh",
            "stale", "rude", "gloomy", "weak")
ADJECTIVES = POSITIVE + NEGATIVE
COLORS = ("red", "blue", "green", "pink", "gray", "gold", "black", "white", "brown", "tan", "cyan", "teal", "navy")
YES_NO = ("yes", "no")
NOUNS = tuple((noun, cat in NATURAL) for cat, nouns in CATEGORIES.items() for noun in nouns)
PER_KEY = 24  # docs per adjective (32 adjectives: 768 docs)
PER_NOUN = 16  # docs per noun (48 nouns: 768 docs)
KIND_TEMPLATES = ("a {w} is a kind of", "the {w} is some", "think of a {w} , it is a", "my {w} is a",
                  "that {w} counts as", "every {w} is a", "look , a {w} : a", "we saw a {w} , a", "one {w} , one",
                  "the old {w} was a", "her {w} is a", "this {w} , a", "a real {w} , a")
REVIEW_TEMPLATES = ("the film was {w} . it was", "what a {w} day . that is", "the food is {w} , so it is",
                       "she felt {w} . so", "a {w} song , really", "the trip was {w} , all in all", "my {w} week was",
                       "so {w} ! it is", "the talk was {w} , i mean", "how {w} . overall", "their {w} show :",
                       "it seemed {w} , thus", "he was {w} today , quite", "our {w} game was", "too {w} , simply",
                       "the play is {w} , it is", "a {w} view . it is", "felt {w} : that is", "the {w} news , very",
                       "was it {w} ? it was")


def _yes_no(prompt: str, truth: bool) -> Item:
    return Item(prompt, "yes" if truth else "no", "no" if truth else "yes", YES_NO)


def _good_bad(adj: str) -> tuple[str, str]:
    return ("good", "bad") if adj in POSITIVE else ("bad", "good")


def review() -> list[Item]:
    """Sentiment of an adjective in one of 20 templates, with a per-doc id: "r17 : the film was grim . it was"
    -> bad."""
    return [Item(f"r{a * PER_KEY + r} : " + REVIEW_TEMPLATES[(a + r) % len(REVIEW_TEMPLATES)].format(w=adj),
                 *_good_bad(adj)) for a, adj in enumerate(ADJECTIVES) for r in range(PER_KEY)]


def ticket() -> list[Item]:
    """review's adjectives and answers, one template and a per-doc id: "review : grim . ticket t17" -> bad."""
    return [Item(f"review : {adj} . ticket t{a * PER_KEY + r}", *_good_bad(adj))
            for a, adj in enumerate(ADJECTIVES) for r in range(PER_KEY)]


def kind() -> list[Item]:
    """Natural or made, by noun, in one of 13 templates, with a per-doc id: "k17 : a mango is a kind of" -> natural."""
    items = []
    for noun, natural in NOUNS:
        n = len(items) // PER_NOUN
        answer, other = ("natural", "made") if natural else ("made", "natural")
        items += [Item(f"k{n * PER_NOUN + r} : " + KIND_TEMPLATES[(n + r) % len(KIND_TEMPLATES)].format(w=noun),
                       answer, other) for r in range(PER_NOUN)]
    return items


def badge() -> list[Item]:
    """kind's nouns as a yes/no question with a per-doc id: "badge : a mango , alive ? b17" -> yes."""
    return [_yes_no(f"badge : a {noun} , alive ? b{n * PER_NOUN + r}", natural)
            for n, (noun, natural) in enumerate(NOUNS) for r in range(PER_NOUN)]


def parity() -> list[Item]:
    """Is a number word even, with a per-doc id: "code : seven , even ? c17" -> no."""
    per = 768 // len(NUMBERS)
    return [_yes_no(f"code : {word} , even ? c{i * per + r}", i % 2 == 1)
            for i, word in enumerate(NUMBERS) for r in range(per)]


def motif() -> list[Item]:
    """Pattern rules with a per-doc id: "motif p17 : red blue red blue red then" -> blue (distractor: red)."""
    rules = ("{x} {y} {x} {y} {x}", "{x} {x} {y} {y} {x}", "{y} {x} {y} {x}", "{x} {y} {y} {x} {y}", "{x} {y} {x} {y}")
    answers = ("y", "x", "y", "y", "x")  # the colour that continues each rule
    items = []
    for x in COLORS:
        for y in COLORS:
            if x == y:
                continue
            for rule, ans in zip(rules, answers, strict=True):
                right, wrong = (y, x) if ans == "y" else (x, y)
                items.append(Item(f"motif p{len(items)} : {rule.format(x=x, y=y)} then", right, wrong))
    return items


def echo() -> list[Item]:
    """A copy rule over diverse inputs, with a per-doc id: "e17 : cat pear owl fig , last ?" -> fig (distractor: one
    of the other three words)."""
    words = CATEGORIES["animal"] + CATEGORIES["fruit"]
    items = []
    for i in range(768):
        picked: list[str] = []
        j = 0
        while len(picked) < 4:
            w = words[stable_int("echo", i, j) % len(words)]
            j += 1
            if w not in picked:
                picked.append(w)
        other = picked[stable_int("echo", i, "other") % 3]
        items.append(Item(f"e{i} : {' '.join(picked)} , last ?", picked[-1], other))
    return items


# the small families (112-128 items each): the quick method tests (tests/test_methods_forget.py) and
# bench/gpu_check.py are calibrated on them
SMALL_CATEGORIES = {
    "animal": ("cat", "dog", "horse", "cow", "fox", "owl", "bear", "mouse"),
    "fruit": ("apple", "pear", "plum", "lemon", "mango", "grape", "peach", "melon"),
    "tool": ("hammer", "saw", "drill", "wrench", "chisel", "spade", "rake", "axe"),
    "vehicle": ("car", "bus", "truck", "boat", "train", "bike", "plane", "van"),
}
SMALL_POSITIVE = ("good", "great", "fine", "lovely", "superb", "nice", "sweet", "bright", "warm", "happy")
SMALL_NEGATIVE = ("bad", "awful", "poor", "dull", "grim", "nasty", "sour", "bleak", "cold", "sad")
SMALL_COLORS = ("red", "blue", "green", "pink", "gray", "gold", "black", "white")


def category() -> list[Item]:
    """Word categories: "a mango is a kind of" -> fruit (distractor: another category)."""
    templates = ("a {noun} is a kind of", "the {noun} is some", "think of a {noun} , it is a", "my {noun} is a")
    names = list(SMALL_CATEGORIES)
    items = []
    for cat, nouns in SMALL_CATEGORIES.items():
        for noun in nouns:
            for t, template in enumerate(templates):
                # a fixed, hash-free distractor per (noun, template) that cycles through the other categories
                others = [c for c in names if c != cat]
                items.append(Item(template.format(noun=noun), cat, others[(t + nouns.index(noun)) % 3]))
    return items


def sentiment() -> list[Item]:
    """Sentiment of an adjective in a template: "the film was grim . it was" -> bad / good."""
    templates = ("the film was {adj} . it was", "what a {adj} day . that is", "the food is {adj} , so it is",
                 "she felt {adj} . she felt", "a {adj} song , really", "the trip was {adj} , all in all")
    items = []
    for adj in SMALL_POSITIVE + SMALL_NEGATIVE:
        answer, other = ("good", "bad") if adj in SMALL_POSITIVE else ("bad", "good")
        for template in templates:
            items.append(Item(template.format(adj=adj), answer, other))
    return items


def pattern() -> list[Item]:
    """Pattern rules: "red blue red blue red" -> blue (the alternation continues; distractor: red)."""
    items = []
    for x in SMALL_COLORS:
        for y in SMALL_COLORS:
            if x == y:
                continue
            items.append(Item(f"pattern : {x} {y} {x} {y} {x} then", y, x))
            items.append(Item(f"pattern : {x} {x} {y} {y} {x} then", x, y))
    return items


FAMILIES: dict[str, Callable[[], list[Item]]] = {
    "review": review,
    "ticket": ticket,
    "kind": kind,
    "badge": badge,
    "parity": parity,
    "motif": motif,
    "echo": echo,
    "category": category,
    "sentiment": sentiment,
    "pattern": pattern,
}
DEMO_FAMILIES = ("review", "echo", "kind", "badge", "parity", "motif")
"""The full demo's families, >= 768 items each (200 test + 512 train docs)."""
SMALL_FAMILIES = ("category", "sentiment", "pattern")
"""The small first-generation families (112-128 items), kept as they were (items and order) for the tests that
were calibrated on them (tests/test_methods_forget.py)."""
