"""Bounded config parsing: a YAML or JSON setting may not expand past what a config plausibly needs.

YAML aliases let a few lines stand for 10^9 items (a "billion laughs" file): ``yaml.safe_load`` shares the
aliased objects, so loading is instant, but validating, copying or dumping the result expands them and runs
until memory is gone. :func:`load_yaml` measures the composed node graph -- every alias counted as often as it
is used, without expanding anything -- and refuses a config past :data:`MAX_NODES` items, :data:`MAX_DEPTH`
levels, :data:`MAX_BYTES` bytes or with a self-referencing alias, before anything else sees it.
"""

from __future__ import annotations

from typing import Any

from lm_forget.errors import ConfigError

MAX_NODES = 100_000  #: scalars, lists and mappings after alias expansion (a large study config has ~1,000)
MAX_DEPTH = 64  #: nesting levels (a study config has ~5)
MAX_BYTES = 10 * 1024 * 1024  #: size of the text


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _too_big(where: str, what: str) -> ConfigError:
    return ConfigError(f"{where}: {what}; a config this large is refused before it is read (limits: "
                       f"{MAX_NODES:,} items after YAML aliases are expanded, {MAX_DEPTH} levels of nesting, "
                       f"{MAX_BYTES // 2**20} MiB). Write the values out, without aliases that multiply them.")


def check_nodes(root: Any, where: str) -> None:
    """Refuse a composed YAML node graph that expands past the limits or refers to itself (no recursion)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            entered.discard(key)
            if size[key] > MAX_NODES:
                raise _too_big(where, f"expands to more than {MAX_NODES:,} items")
            if depth[key] > MAX_DEPTH:
                raise _too_big(where, f"nests more than {MAX_DEPTH} levels deep")
            continue
        if key in size:
            continue
        if key in entered:
            raise ConfigError(f"{where}: a YAML alias refers to a value that contains it (a self-referencing "
                              "config never ends); write the value out instead.")
        entered.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)


def load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load(text)`` after checking its size, depth and alias expansion (``where`` names the source)."""
    import yaml

    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise _too_big(where, f"is larger than {MAX_BYTES // 2**20} MiB")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise _too_big(where, f"nests more than {MAX_DEPTH} levels deep") from None
    if node is None:
        return None
    check_nodes(node, where)
    return yaml.safe_load(text)


def load_json(text: str, where: str) -> Any:
    """``json.loads(text)`` with the same limits (JSON has no aliases: size and depth)."""
    import json

    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise _too_big(where, f"is larger than {MAX_BYTES // 2**20} MiB")
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_big(where, f"nests more than {MAX_DEPTH} levels deep") from None
    check_value(value, where)
    return value


def check_value(value: Any, where: str) -> None:
    """Refuse a parsed value (mappings and lists) past the limits; shared sub-values count once per use."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise _too_big(where, f"expands to more than {MAX_NODES:,} items")
        if level > MAX_DEPTH:
            raise _too_big(where, f"nests more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((v, level + 1) for pair in item.items() for v in pair)
        elif isinstance(item, (list, tuple)):
            stack.extend((v, level + 1) for v in item)
