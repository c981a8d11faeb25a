"""Findings: one plain-words line per claim of the paper's abstract, as one typed object (``findings.json``).

Every report opens with them (the per-size report, the study index, the demo's printout), and anything that
wants the results in words (the demo, model cards, a notebook) reads ``findings.json`` instead of the tables.
A finding carries its number, interval and verdict, or says once that it is not testable at this n and what
n would make it testable. The builders live in :mod:`lm_forget.analysis.findings_build`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

FINDINGS_FILE = "findings.json"
SCHEMA = "lm-forget/findings/v1"

#: claim key -> the abstract's claim in plain words (its order is the order of every Findings section)
CLAIMS = {
    "forget_set": "forgetting drives the forget (training) set to near-chance predictions",
    "held_out": "held-out accuracy after forgetting varies by task",
    "behaviours": "held-out behaviour: kept, partial, or to (or below) pretrained",
    "difficulty": "task difficulty does not predict forgetting",
    "confidence": "low confidence predicts more forgetting",
    "variance": "low hidden-state variance predicts more forgetting",
    "probes": "forgetting is shallow: linear probes still recover the task",
    # beyond the abstract (secondary readings of the paper), shown after its claims
    "order": "docs learned early are forgotten late (learning vs forgetting order)",
    "relearn": "a few gold-label examples bring a forgotten task back",
    "deep": "forgetting is shallow under attack: membership inference and quantization find the forget set",
}


@dataclass
class Finding:
    """One claim's result.

    Attributes:
        claim: key of :data:`CLAIMS`.
        verdict: the verdict in words (``near chance in 4 of 5 forget sets``, ``significant``,
            ``not testable here``, ...).
        text: the one plain line (number, interval, verdict) shown under the claim.
        value, low, high: the headline number and its interval (None: none applies).
        n: what the verdict rests on (docs or tasks, see ``unit``); n_needed: the n from which it is testable.
        unit: ``docs`` or ``tasks``.
        testable: False when no outcome at this n could give a verdict (the text says what n would).
        details: per-cell lines (one per forget set, task, relearning cell).
        source: the table it comes from, relative to the report folder.
    """

    claim: str
    verdict: str
    text: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    n_needed: int | None = None
    unit: str = "docs"
    testable: bool = True
    details: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def title(self) -> str:
        return CLAIMS.get(self.claim, self.claim)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and inf become None (no invalid JSON), numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Findings:
    """The findings of one report (``scope`` = ``report``) or of a whole study (``study``).

    Attributes:
        scope: ``report`` (one analysis) or ``study`` (the study index).
        options: the verdicts' settings (margin, alpha, confidence_level).
        items: one :class:`Finding` per claim, in :data:`CLAIMS` order.
    """

    scope: str
    options: dict[str, Any] = field(default_factory=dict)
    items: list[Finding] = field(default_factory=list)

    def get(self, claim: str) -> Finding | None:
        return next((f for f in self.items if f.claim == claim), None)

    def put(self, finding: Finding) -> None:
        """Add ``finding``, replacing the one of the same claim; keep :data:`CLAIMS` order."""
        self.items = [f for f in self.items if f.claim != finding.claim] + [finding]
        order = list(CLAIMS)
        self.items.sort(key=lambda f: order.index(f.claim) if f.claim in order else len(order))

    def to_dict(self) -> dict[str, Any]:
        return _clean({"schema": SCHEMA, "scope": self.scope, "options": self.options,
                       "findings": [asdict(f) | {"title": f.title} for f in self.items]})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Findings:
        known = {f.name for f in fields(Finding)}
        items = [Finding(**{k: v for k, v in item.items() if k in known}) for item in data.get("findings", [])]
        return cls(scope=data.get("scope", "report"), options=dict(data.get("options", {})), items=items)

    @classmethod
    def read(cls, path: Path) -> Findings:
        """From a ``findings.json`` file (or the report folder holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / FINDINGS_FILE
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def lines(self, *, details: bool = True) -> list[str]:
        """Plain text: one line per claim (``title: text``), its per-cell lines indented below."""
        out = []
        for f in self.items:
            out.append(f"{f.title}: {f.text}")
            if details:
                out += [f"    {d}" for d in f.details]
        return out

    def markdown(self) -> list[str]:
        """The report's ``## Findings`` section (heading, one bullet per claim, its details nested)."""
        opts = self.options
        head = ["## Findings", ""]
        if opts:
            head += [f"Verdicts are tests at alpha = {opts.get('alpha')} against one margin of "
                     f"{opts.get('margin')} (accuracy units); intervals are {opts.get('confidence_level', 0.95):.0%}. "
                     "Each line: the abstract's claim, then what this run found.", ""]
        body = []
        for f in self.items:
            body.append(f"- **{f.title}**: {f.text}")
            body += [f"    - {d}" for d in f.details]
        return head + body + [""]
