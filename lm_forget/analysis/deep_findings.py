"""The "How deep is the forgetting?" finding: per attack, what it finds of the forget set after forgetting.

From the rows of :mod:`lm_forget.analysis.deep_report` (never a CSV read back):

- membership inference: the forgotten model's LOSS AUC of the forget set against same-split non-members (the
  held-out row where the split had no room for them, said so), with its interval; verdict ``detected`` when the
  interval lies above 0.5, ``not detected`` when it holds 0.5, ``below 0.5`` otherwise;
- quantization: per precision, the recovered share of the forget-set accuracy with its interval; verdict
  ``recovered`` when the interval lies above 0, ``none shown`` when it holds 0, ``undefined`` (with the reason)
  when the fine-tuning gain is not shown.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from lm_forget.analysis.findings import Finding

SCORE = "loss"  # the headline attack (Yeom et al.): the other scores are in mia.csv


def _ci(value: Any, low: Any, high: Any) -> str:
    finite = [isinstance(v, (int, float)) and math.isfinite(v) for v in (value, low, high)]
    if not finite[0]:
        return "undefined"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if all(finite) else f"{value:.3f} [interval undefined]"


def _of(row: dict[str, Any], name: str) -> str:
    return _ci(*(row.get(f"{name}{s}", math.nan) for s in ("", "_lo", "_hi")))


def _mia_verdict(row: dict[str, Any]) -> str:
    lo, hi = row[f"{SCORE}_auc_lo"], row[f"{SCORE}_auc_hi"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "undefined"
    return "detected" if lo > 0.5 else "below 0.5" if hi < 0.5 else "not detected"


def _mia_rows(mia: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per cell, the forgotten model's same-split row, else its held-out row."""
    chosen: dict[tuple, dict[str, Any]] = {}
    for row in mia:
        if row["model"] != "forget":
            continue
        cell = (row.get("method"), row["task"], row["n"], row["seed"])
        if cell not in chosen or (chosen[cell]["non_members"] == "same_split"
                                  and not math.isfinite(chosen[cell][f"{SCORE}_auc"])):
            chosen[cell] = row
    return list(chosen.values())


def _cell(row: dict[str, Any]) -> str:
    method = f"{row['method']}: " if isinstance(row.get("method"), str) else ""
    return f"{method}{row['task']} n={row['n']} seed {row['seed']}"


def _quant_verdict(row: dict[str, Any]) -> str:
    lo, hi = row.get("forget_set_share_lo", math.nan), row.get("forget_set_share_hi", math.nan)
    if not (isinstance(lo, float) and math.isfinite(lo) and math.isfinite(hi)):
        return "undefined"
    return "recovered" if lo > 0 else "none shown"


def deep_finding(quant: Sequence[dict[str, Any]], mia: Sequence[dict[str, Any]]) -> Finding:
    """The finding of the section's rows (``deep_report.deep_rows``); "not in this study" without them."""
    if not quant and not mia:
        return Finding("deep", "not in this study", "not in this study: no mia or eval_quantized stage.")
    parts, details, verdicts = [], [], {}
    rows = _mia_rows(mia)
    if rows:
        words = [_mia_verdict(r) for r in rows]
        verdicts["membership inference"] = words
        parts.append(f"membership inference ({SCORE.upper()} AUC after forgetting) detects the forget set in "
                     f"{words.count('detected')} of {len(rows)} cells ({_counts(words)})")
        details += [f"{_cell(r)}: membership inference {SCORE.upper()} AUC vs {r['non_members']} non-members "
                    f"{_ci(r[f'{SCORE}_auc'], r[f'{SCORE}_auc_lo'], r[f'{SCORE}_auc_hi'])} -> {w}"
                    + (f" ({r['note']})" if r.get("note") else "") for r, w in zip(rows, words, strict=True)]
    attacked = [r for r in quant if r["attack"] != "none"]
    if attacked:
        words = [_quant_verdict(r) for r in attacked]
        verdicts["quantization"] = words
        parts.append(f"quantization recovers forget-set accuracy in {words.count('recovered')} of {len(attacked)} "
                     f"(cell, precision) pairs ({_counts(words)})")
        details += [f"{_cell(r)}: {r['attack']} forget-set accuracy {_of(r, 'forget_set_acc')}, recovered share "
                    f"{_of(r, 'forget_set_share')} -> {w}" + (f" ({r['note']})" if r.get("note") else "")
                    for r, w in zip(attacked, words, strict=True)]
    found = sum(w in ("detected", "recovered") for words in verdicts.values() for w in words)
    total = sum(len(words) for words in verdicts.values())
    return Finding("deep", f"an attack finds the forget set in {found} of {total} tries", "; ".join(parts) + ".",
                   float(found), n=total, unit="attacks", details=details, source="deep/mia.csv, deep/quantized.csv")


def _counts(words: Sequence[str]) -> str:
    return ", ".join(f"{n} {w}" for w, n in Counter(words).most_common())
