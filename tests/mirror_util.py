"""Build temporary dataset mirrors for tests from ../shared's real data and our fixtures.

../shared mirrors many sources with one split only (e.g. boolq validation). To exercise whole tasks
on real data, ``suite_mirror`` splits such a file by row parity into the two splits a task needs
(even rows → training split, odd rows → evaluation split); that is test scaffolding only, the
library itself never invents splits.
"""

from __future__ import annotations

import os
from pathlib import Path

from lm_forget.data.mirrors import SourceRef
from lm_forget.data.registry import SUITE, TaskSpec
from lm_forget.data.source import plan_sources, split_fields


def needed_refs(spec: TaskSpec) -> list[SourceRef]:
    """The source splits a suite task reads."""
    return plan_sources(split_fields(spec)).refs()


def _find(ref: SourceRef, roots: list[Path]) -> Path | None:
    for root in roots:
        candidate = ref.mirror_dir(root) / f"{ref.split}.jsonl"
        if candidate.is_file():
            return candidate
    return None


def _write_rows(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(rows), encoding="utf-8")


def build_suite_mirror(target: Path, roots: list[Path], specs=SUITE) -> dict[str, str]:
    """Fill ``target`` with every split the suite needs; returns ``{task: how}`` for diagnostics."""
    how: dict[str, str] = {}
    for spec in specs:
        refs = needed_refs(spec)
        found = {ref: _find(ref, roots) for ref in refs}
        missing = [ref for ref, path in found.items() if path is None]
        for ref, path in found.items():
            if path is not None:
                dest = ref.mirror_dir(target) / f"{ref.split}.jsonl"
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.exists():
                    os.symlink(path, dest)
        if not missing:
            how[spec.name] = "as is"
            continue
        donors = [path for path in found.values() if path is not None]
        if not donors or len(missing) != 1:
            how[spec.name] = "unavailable"
            continue
        lines = [line for line in donors[0].read_text(encoding="utf-8").splitlines(keepends=True) if line.strip()]
        present = next(ref for ref in refs if found[ref] is not None)
        dest_present = present.mirror_dir(target) / f"{present.split}.jsonl"
        dest_present.unlink()
        train_ref = refs[0]
        evens, odds = lines[0::2], lines[1::2]
        for ref in refs:
            rows = evens if ref == train_ref else odds
            _write_rows(ref.mirror_dir(target) / f"{ref.split}.jsonl", rows)
        how[spec.name] = f"parity split of {donors[0]}"
    return how

