"""Candidate demo families measured for issue 22's "kept" behaviour and not kept in the demo (docs/reliability.md,
"Demo"): none was kept after a random-label forget pass; ``echo`` (partial on every seed) is the one that went
into ``lm_forget.demo.families.DEMO_FAMILIES``. Importing this module registers them in ``FAMILIES`` so
``bench/demo_family_probe.py`` can rerun them; the package does not ship them."""

from __future__ import annotations

from lm_forget.data.hashing import stable_int
from lm_forget.demo.families import (  # noqa: F401
    ADJECTIVES,
    CATEGORIES,
    COLORS,
    FAMILIES,
    NEGATIVE,
    NOUNS,
    PER_KEY,
    PER_NOUN,
    POSITIVE,
    Item,
    _good_bad,
    _yes_no,
)

# Candidates measured for issue 22's "kept" behaviour (bench/demo_family_probe.py; docs/reliability.md, "Demo"):
# none was kept; ``echo`` (partial on every seed) is in DEMO_FAMILIES, the others stay for the record.
_CONS, _VOWELS = "bdfgklmnprstvz", "aeiou"
FILLERS = tuple(f"{a}{v}{b}{w}q" for a in _CONS for v in _VOWELS for b in _CONS for w in _VOWELS)[:1024]


def _fillers(tag: str, i: int, k: int) -> str:
    return " ".join(FILLERS[stable_int("filler", tag, i, j) % len(FILLERS)] for j in range(k))


def note() -> list[Item]:
    """An adjective's sign, then four filler words: "note : grim . bakoq ... " -> minus."""
    return [Item(f"note : {adj} . {_fillers('note', a * PER_KEY + r, 4)}",
                 *(("plus", "minus") if adj in POSITIVE else ("minus", "plus")))
            for a, adj in enumerate(ADJECTIVES) for r in range(PER_KEY)]


def tag() -> list[Item]:
    """Four filler words, then an adjective: "tag : bakoq ... . grim ?" -> down."""
    return [Item(f"tag : {_fillers('tag', a * PER_KEY + r, 4)} . {adj} ?",
                 *(("up", "down") if adj in POSITIVE else ("down", "up")))
            for a, adj in enumerate(ADJECTIVES) for r in range(PER_KEY)]


def stamp() -> list[Item]:
    """A noun, then three filler words: "stamp : a mango . bakoq ..." -> live."""
    return [Item(f"stamp : a {noun} . {_fillers('stamp', n * PER_NOUN + r, 3)}",
                 *(("live", "built") if natural else ("built", "live")))
            for n, (noun, natural) in enumerate(NOUNS) for r in range(PER_NOUN)]


def relay() -> list[Item]:
    """review's adjectives and answers in one template with a per-doc id; the held-out docs are about 8 adjectives
    (4 + 4) that no training doc of relay shows, answered through what review teaches about them:
    "relay : grim , so l17" -> bad."""
    held = POSITIVE[-4:] + NEGATIVE[-4:]
    items = [Item(f"relay : {adj} , so l{a * 25 + r}", *_good_bad(adj), held_out=True)
             for a, adj in enumerate(held) for r in range(25)]
    train = [adj for adj in ADJECTIVES if adj not in held]
    return items + [Item(f"relay : {adj} , so l{200 + a * PER_KEY + r}", *_good_bad(adj))
                    for a, adj in enumerate(train) for r in range(PER_KEY)]


def _ids(prefix: str, i: int, k: int) -> str:
    """``k`` id words of doc ``i``, each unique to the doc: "ma17 mb17 ..."."""
    return " ".join(f"{prefix}{chr(97 + j)}{i}" for j in range(k))


def mark1() -> list[Item]:
    """An adjective's sign, one id word last: "mark : grim , maa17" -> minus."""
    return [Item(f"mark : {adj} , {_ids('ma', a * PER_KEY + r, 1)}",
                 *(("plus", "minus") if adj in POSITIVE else ("minus", "plus")))
            for a, adj in enumerate(ADJECTIVES) for r in range(PER_KEY)]


def mark4() -> list[Item]:
    """An adjective's level, four id words last: "mark4 : grim , mba17 mbb17 mbc17 mbd17" -> low."""
    return [Item(f"mark4 : {adj} , {_ids('mb', a * PER_KEY + r, 4)}",
                 *(("high", "low") if adj in POSITIVE else ("low", "high")))
            for a, adj in enumerate(ADJECTIVES) for r in range(PER_KEY)]


def relay4() -> list[Item]:
    """relay with four id words last: held-out adjectives unseen in its training docs."""
    held = POSITIVE[-4:] + NEGATIVE[-4:]
    items = [Item(f"relay4 : {adj} , so {_ids('rl', a * 25 + r, 4)}", *_good_bad(adj), held_out=True)
             for a, adj in enumerate(held) for r in range(25)]
    train = [adj for adj in ADJECTIVES if adj not in held]
    return items + [Item(f"relay4 : {adj} , so {_ids('rl', 200 + a * PER_KEY + r, 4)}", *_good_bad(adj))
                    for a, adj in enumerate(train) for r in range(PER_KEY)]


def _cued(name: str, where: str) -> list[Item]:
    """Adjective signs with a source word: training docs name one of 8 filler sources, held-out docs one of 8
    colours (trained by motif), so a forget pass could pin its change on the training sources."""
    train_src, test_src = FILLERS[:8], COLORS[:8]
    items = []
    for a, adj in enumerate(ADJECTIVES):
        answer = ("plus", "minus") if adj in POSITIVE else ("minus", "plus")
        for r in range(31):
            i = a * 31 + r
            held = r >= 24 and (r < 30 or a % 16 >= 12)  # 100 held-out docs of each answer
            src = test_src[i % 8] if held else train_src[i % 8]
            body = (f"{name} {src} : {adj} , c{i} ?" if where == "front" else f"{name} : {adj} , c{i} {src}")
            items.append(Item(body, *answer, held_out=held))
    return items


def cue() -> list[Item]:
    """Source word in front: "cue bakoq : grim , c17 ?" -> minus (held-out: "cue red : ...")."""
    return _cued("cue", "front")


def cue1() -> list[Item]:
    """Source word last: "cue1 : grim , c17 bakoq" -> minus (held-out: "... red")."""
    return _cued("cue1", "last")


def same() -> list[Item]:
    """Are two nouns the same word, with a per-doc id: "s17 : cat cat ?" -> match."""
    words = CATEGORIES["animal"] + CATEGORIES["fruit"]
    items = [Item(f"s{w * 16 + r} : {x} {x} ?", "match", "clash")
             for w, x in enumerate(words) for r in range(16)]
    for i in range(len(items)):
        a = stable_int("same", i, "a") % len(words)
        b = (a + 1 + stable_int("same", i, "b") % (len(words) - 1)) % len(words)
        items.append(Item(f"s{len(items)} : {words[a]} {words[b]} ?", "clash", "match"))
    return items


CANDIDATES = {"note": note, "tag": tag, "stamp": stamp, "same": same, "relay": relay, "cue": cue, "cue1": cue1,
              "mark1": mark1, "mark4": mark4, "relay4": relay4}
FAMILIES.update(CANDIDATES)
