"""Read lm-eval task YAMLs without lm-eval: the one ``!function``-aware loader.

lm-eval's YAMLs tag Python references as ``!function module.name``; resolving them imports code (and
lm_eval). Every reader in lm-forget only needs the plain fields, so the tag is read as its reference
string (``"module.name"``) and nothing is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class TaskYamlLoader(yaml.SafeLoader):
    """A SafeLoader that reads ``!function x.y`` as the string ``"x.y"``."""


TaskYamlLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def load_task_yaml(path: Path) -> Any:
    """One task YAML file as plain data (``!function`` kept as its reference string); ``{}`` when empty.

    Raises ``yaml.YAMLError`` or ``OSError`` as PyYAML and ``open`` do.
    """
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=TaskYamlLoader) or {}  # noqa: S506 - SafeLoader


def load_task_yaml_merged(path: Path) -> dict[str, Any]:
    """A task YAML with its ``include:`` chain merged in (the including file's fields win), as lm-eval does."""
    merged: dict[str, Any] = {}
    chain = [Path(path)]
    while chain:
        current = chain.pop()
        data = load_task_yaml(current)
        includes = data.pop("include", None)
        merged = {**data, **merged}
        for inc in [includes] if isinstance(includes, str) else (includes or []):
            chain.append(current.parent / inc)
    return merged
