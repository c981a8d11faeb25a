"""The demo's printed findings: the study's ``findings.json`` in plain lines (never recomputed, no CSV re-read).

One line per claim of the paper's abstract (forget-set contrast, held-out variation, behaviours, difficulty,
confidence, variance, probes), then the order and relearning findings, each with its per-cell lines.
"""

from __future__ import annotations

from pathlib import Path


def findings_lines(report_dir: Path) -> list[str]:
    """The findings of the study under ``report_dir`` (the analyze step's output), as printed lines."""
    from lm_forget.analysis.findings import FINDINGS_FILE, Findings

    path = Path(report_dir) / FINDINGS_FILE
    if not path.is_file():
        return [f"findings: not in the report (no {FINDINGS_FILE}; rerun the analyze step)"]
    findings = Findings.read(path)
    opts = findings.options
    head = (f"findings (tests at alpha = {opts.get('alpha')}, margin {opts.get('margin')}; "
            f"{opts.get('confidence_level', 0.95):.0%} intervals; chance = 0.50):")
    return [head, *(f"  {line}" for line in findings.lines())]
