"""Training numbers that cannot work (a NaN learning rate, zero epochs, a batch of 0, a negative seed).

They are refused when the config is built -- one line naming the setting and the allowed range -- instead of
crashing deep in the trainer, or, worse, training nothing and marking the run done.
"""

from __future__ import annotations

import math
from typing import Any

from lm_forget.errors import ConfigError


def _number(value: Any) -> float | None:
    """``value`` as a float (None when it is not a number: a later check names that)."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


#: (field, rule, test): numbers a run cannot train with -- refused at parse time, before any folder exists
NUMBER_RULES: tuple[tuple[str, str, Any], ...] = (
    ("learning_rate", "a positive finite number, e.g. 1e-4", lambda v: math.isfinite(v) and v > 0),
    ("per_device_train_batch_size", "a whole number >= 1", lambda v: v >= 1 and v.is_integer()),
    ("per_device_eval_batch_size", "a whole number >= 1", lambda v: v >= 1 and v.is_integer()),
    ("gradient_accumulation_steps", "a whole number >= 1", lambda v: v >= 1 and v.is_integer()),
    ("seed", "a whole number from 0 to 2**32 - 1", lambda v: 0 <= v < 2**32 and v.is_integer()),
    ("weight_decay", "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0),
    ("warmup_ratio", "a number from 0 to 1", lambda v: 0 <= v <= 1),
    ("max_grad_norm", "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0),
)


def check_numbers(config: Any) -> None:
    """Refuse numbers that would crash training later or quietly train nothing (one line, the fix)."""
    for name, rule, ok in NUMBER_RULES:
        value = _number(getattr(config, name, None))
        if value is not None and not ok(value):
            raise ConfigError(f"--{name} {getattr(config, name)!r}: must be {rule}")
    epochs, steps = _number(config.num_train_epochs), _number(config.max_steps)
    if steps is not None and steps <= 0 and epochs is not None and not (math.isfinite(epochs) and epochs > 0):
        raise ConfigError(f"--num_train_epochs {config.num_train_epochs!r}: must be a positive finite number (or set "
                          "--max_steps N >= 1); with no epochs and no steps the run would train nothing and still "
                          "be marked done")
