"""How lm-forget's registries find and hold their entries: modules that register themselves on import, found by
their package and name (:func:`import_modules`), and one registration rule (:func:`add_once`): a name is taken
once; the same entry again (a module imported twice) is a no-op. Used by the study features
(``run/*_steps.py``), the study report's sections (``analysis/*_report.py``), the per-size report's parts
(``analysis/*_parts.py``) and the forgetting methods (``train/methods/``)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def import_modules(package: str, *, suffix: str = "", first: Sequence[str] = (), skip: Collection[str] = ()) -> None:
    """Import the modules ``first`` of ``package`` (in that order), then every other module of it whose name ends
    with ``suffix`` (``skip`` left out): each registers what it defines."""
    found = importlib.import_module(package)
    for name in first:
        importlib.import_module(f"{package}.{name}")
    for info in pkgutil.iter_modules(found.__path__):
        if info.name.endswith(suffix) and info.name not in first and info.name not in skip:
            importlib.import_module(f"{package}.{info.name}")


def origin(function: Callable[..., Any]) -> str:
    """Where ``function`` is defined: ``module.qualname``."""
    return f"{function.__module__}.{function.__qualname__}"


def add_once(registry: dict[str, T], name: str, entry: T, *, what: str, where: Callable[[T], str]) -> T:
    """Put ``entry`` in ``registry`` under ``name``: the same entry again (``where`` says where an entry is
    defined) replaces it; another entry of that name is a ValueError."""
    known = registry.get(name)
    if known is not None and where(known) != where(entry):
        raise ValueError(f"{what} {name!r} is registered twice ({where(known)} and {where(entry)}); give one of "
                         "them another name")
    registry[name] = entry
    return entry
