"""The run config schema's building blocks: the strict ``Section`` base, list/number types and the constants the
sections share (stages, relearn pools, the dynamics limit). The sections: :mod:`lm_forget.run.schema_train`
(training stages) and :mod:`lm_forget.run.schema` (the rest, and ``RunConfig``)."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from lm_forget.errors import unknown_key_message

# The stages of a study, in the only order that makes sense; a config lists a subsequence of them.
STAGES = ("eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "relearn", "eval_relearn",
          "mia", "eval_quantized", "eval_formats", "features", "analyze", "push")
# what a config without ``stages`` runs (relearning and pushing are opt-in)
DEFAULT_STAGES = ("eval_pretrained", "finetune", "eval_finetuned", "forget", "eval_forget", "features", "analyze")
RELEARN_POOLS = ("forget_set", "held_in", "unrelated")
#: docs per task the dynamics callback scores by default (``dynamics_limit``): bounds its cost on large pools
DYNAMICS_LIMIT = 200


def _listify(value: Any) -> Any:
    """A single entry is a one-element list (``forget.num_examples: 100``)."""
    return [value] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value


def _strict_dataclass(cls: type) -> Any:
    """A BeforeValidator building stdlib dataclass ``cls`` from a mapping, unknown keys refused (did-you-mean)."""
    adapter = TypeAdapter(cls)

    def build(value: Any) -> Any:
        if isinstance(value, cls) or value is None:
            return cls() if value is None else value
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping of settings, got {value!r}")
        known = [f.name for f in fields(cls)]
        for key in value:
            if key not in known:
                raise ValueError(unknown_key_message(str(key), known))
        return adapter.validate_python(value)

    return BeforeValidator(build)


IntList = Annotated[list[int], BeforeValidator(_listify)]
# numbers that cannot work are refused by the schema (one line, before any folder exists)
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]
StrList = Annotated[list[str], BeforeValidator(_listify)]


class Section(BaseModel):
    """A config section: unknown keys are errors, values are coerced (YAML's ``1e-4`` string is a float)."""

    model_config = ConfigDict(extra="forbid", validate_default=False)


