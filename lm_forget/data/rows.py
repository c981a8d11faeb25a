"""Check a mirror's rows before anything reads them: one schema, no nulls where text is, encodable text.

A JSONL mirror has no schema of its own, so the file's rows define it: a field (or nested field) is
expected to have the kind most rows give it. A row that lacks a field the other rows have, has ``null``
where the others have a value, has another type, or holds a string that cannot be encoded (a lone UTF-16
surrogate) is a DataError naming the file, the line and the field, never a prompt reading ``"None"``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lm_forget.errors import DataError

_FIX = "Fix or remove that line; every row must follow the dataset's Hugging Face schema."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


def _walk(value: Any, generic: str, concrete: str, out: list) -> None:
    """Append (path with list indices collapsed, path with indices, kind, value) for everything in ``value``.

    A list whose items are all strings (or all numbers) is one entry: rows are checked in bulk.
    """
    kind = _kind(value)
    out.append((generic, concrete, kind, value))
    if kind == "object":
        for key, item in value.items():
            _walk(item, f"{generic}.{key}", f"{concrete}.{key}", out)
    elif kind == "list" and value:
        first = type(value[0])
        joined = "".join(value) if first is str and all(type(item) is str for item in value) else None
        if (joined is not None and not _SURROGATE.search(joined)) or (
                first in (int, float) and all(type(item) is first for item in value)):
            out.append((f"{generic}[]", f"{concrete}[0]", _kind(value[0]), ""))
        else:
            for index, item in enumerate(value):
                _walk(item, f"{generic}[]", f"{concrete}[{index}]", out)


_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _surrogate(text: str) -> int | None:
    found = _SURROGATE.search(text)
    return found.start() if found else None


def _shape(value: Any) -> Any:
    """A hashable outline of a value's types (the fast path: rows of one shape need no field-by-field check)."""
    kind = type(value)
    if kind is list:
        types = frozenset(map(type, value))
        if list in types or dict in types:
            return list, frozenset(map(_shape, value))
        return list, types
    if kind is dict:
        return dict, tuple((k, _shape(x)) for k, x in value.items())
    return kind


def check_rows(path: Path, rows: Sequence[dict[str, Any]], lines: Sequence[int], *,
               suspects: set[int] | None = None) -> None:
    """Raise a DataError at the first row (by line) that breaks the schema the file's rows share.

    ``suspects`` (the lines whose raw text has a ``\\uD8xx``-style escape, see :func:`may_hold_surrogate`)
    lets the common case, every row of one shape and no lone surrogate, skip the field-by-field walk.
    """
    if suspects is not None:
        clean = not suspects or not any(_has_surrogate(row) for row, n in zip(rows, lines, strict=True)
                                        if n in suspects)
        if clean and len({tuple((k, _shape(v)) for k, v in row.items()) for row in rows}) == 1:
            return
    _check_rows(path, rows, lines)


def may_hold_surrogate(raw_line: str) -> bool:
    """True when a raw JSON line has a surrogate escape (a valid pair, or a lone half to be reported)."""
    return _ESCAPED_SURROGATE.search(raw_line) is not None


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(v) for v in value.values())
    return isinstance(value, list) and any(_has_surrogate(v) for v in value)


def _check_rows(path: Path, rows: Sequence[dict[str, Any]], lines: Sequence[int]) -> None:
    kinds: dict[str, Counter] = {}
    present: Counter = Counter()
    walked = []
    for row, line in zip(rows, lines, strict=True):
        leaves: list = []
        for key, value in row.items():
            present[key] += 1
            if isinstance(value, list | dict):
                _walk(value, key, key, leaves)
            else:
                leaves.append((key, key, _kind(value), value))
        for generic, concrete, kind, item in leaves:
            counter = kinds.get(generic)
            if counter is None:
                counter = kinds[generic] = Counter()
            counter[kind] += 1
            if kind == "string" and (at := _surrogate(item)) is not None:
                raise DataError(
                    f"{path}:{line}: field {concrete!r} holds a lone UTF-16 surrogate ({item[at]!r} at "
                    f"character {at}), which cannot be encoded as UTF-8. {_FIX} (A JSON escape must be a "
                    "whole pair such as \\ud83d\\ude00, or the character itself.)"
                )
        walked.append((line, row, leaves))
    expected = {path_: _majority(counter) for path_, counter in kinds.items()}
    problems = []
    for line, row, leaves in walked:
        missing = [key for key, count in present.items() if key not in row and count * 2 > len(rows)]
        if missing:
            problems.append((line, f"field {missing[0]!r} is missing (the other rows have it, as a "
                                   f"{expected[missing[0]]})"))
            continue
        for generic, concrete, got, _ in leaves:
            want = expected[generic]
            if want is not None and got != want:
                what = "null where the other rows have a" if got == "null" else f"a {got} where the other rows have a"
                problems.append((line, f"field {concrete!r} is {what} {want}"))
                break
    if problems:
        line, what = problems[0]
        more = f" ({len(problems) - 1} more rows like it)" if len(problems) > 1 else ""
        raise DataError(f"{path}:{line}: {what}{more}. {_FIX}")


def _majority(counter: Counter) -> str | None:
    """The kind most rows give a field; None (anything goes) when no non-null kind is seen."""
    values = [(count, kind) for kind, count in counter.items() if kind != "null"]
    return max(values)[1] if values else None


def check_null_text(dataset: Any, where: str) -> None:
    """A Dataset (parquet or Hub) with ``null`` in a text column that holds text elsewhere is a DataError."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = dataset.data.table if hasattr(dataset.data, "table") else dataset.data
    for name in table.column_names:
        column = table.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        if 0 < column.null_count < len(column):
            first = pc.index(pc.is_null(column), True).as_py()
            raise DataError(
                f"{where}: row {first + 1}: text field {name!r} is null ({column.null_count} rows are); "
                "the prompt would read 'None'. Fill in the text or remove those rows from the data."
            )
