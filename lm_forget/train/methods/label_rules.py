"""Label-rule methods: the paper's random-label forgetting and its flipped-label variant.

Zhang, Choshen & Andreas, "Unforgettable Generalization in Language Models" (COLM 2024, arXiv 2409.02228):
forget by fine-tuning again on the same inputs with randomized labels. The ordinary SFT loss on the answer
tokens, only the targets change (``lm_forget.train.labels``): ``random_labels`` draws each doc's label uniformly
from its two choices by a stable hash of (seed, task, doc id); ``flipped_labels`` always trains the wrong one.
"""

from __future__ import annotations

from lm_forget.train.methods.registry import Method, register_method

RANDOM_LABELS = register_method(Method(
    name="random_labels",
    summary="SFT on labels drawn uniformly from the two choices (the paper's forgetting; the default).",
    label_mode="random",
))

FLIPPED_LABELS = register_method(Method(
    name="flipped_labels",
    summary="SFT on the wrong choice of every doc (the paper's flipped-label variant).",
    label_mode="flip",
))
