"""One reference to a model, passed whole to every step that loads one (train, evaluate, features).

``ModelRef`` is the run config's ``model:`` section and what each step receives; the loaders that turn
it into a transformers model and tokenizer live beside it, so revision, tokenizer and dtype cannot be
dropped on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ModelRef:
    """A pretrained model, optionally with a PEFT adapter on it.

    Attributes:
        name_or_path: Hub id or local folder of the base model.
        revision: Hub revision (branch, tag or commit) of the base; pin it for reproducible studies.
        tokenizer: tokenizer id or folder when it differs from the model's (loaded without ``revision``).
        dtype: torch dtype for training and evaluation (``auto``, ``bfloat16``, ``float32``...).
        adapter: a PEFT adapter folder (or Hub id) on the base; None: the base alone.
    """

    name_or_path: str = ""
    revision: str | None = None
    tokenizer: str | None = None
    dtype: str = "auto"
    adapter: str | None = None

    def tokenizer_source(self) -> tuple[str, str | None]:
        """``(id or folder, revision)`` the tokenizer loads from: the model's own at its revision, or ``tokenizer``."""
        return (self.tokenizer, None) if self.tokenizer else (self.name_or_path, self.revision)

    def with_adapter(self, adapter: str | None) -> ModelRef:
        return replace(self, adapter=adapter)

    def model_args(self) -> str:
        """The equivalent lm-eval ``--model_args`` (recorded in results, and used by non-swapping backends)."""
        args = [f"pretrained={self.name_or_path}"]
        if self.revision:
            args.append(f"revision={self.revision}")
        if self.adapter:
            args.append(f"peft={self.adapter}")
        if self.tokenizer:
            args.append(f"tokenizer={self.tokenizer}")
        if self.dtype != "auto":
            args.append(f"dtype={self.dtype}")
        return ",".join(args)
