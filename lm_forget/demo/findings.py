"""The demo's three findings, read from the report's CSVs (never recomputed): summary lines for the CLI.

1. forget set vs held-out accuracy after forgetting (``protocol/forget_set.csv``),
2. learning-order vs forgetting-order rank correlation (``protocol/dynamics-*/order_stats.csv``),
3. relearning recovery (``relearn/relearn.csv``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _ci(value: Any, low: Any, high: Any) -> str:
    v, lo, hi = _num(value), _num(low), _num(high)
    if not math.isfinite(v):
        return "undefined"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{v:.2f} [interval undefined]"
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]"


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def forget_set_lines(report_dir: Path) -> list[str]:
    """Per forget cell: forget-set vs held-out accuracy after forgetting, with the report's 95% intervals."""
    import pandas as pd

    path = report_dir / "protocol" / "forget_set.csv"
    if not path.is_file():
        return ["forget set vs held-out: not in the report (no forget_set.csv)"]
    lines = ["forget set vs held-out accuracy after forgetting (95% CI; chance = 0.50):"]
    for row in pd.read_csv(path).to_dict("records"):
        lines.append(f"  {row['task']} (N={row['n']}, seed {row['seed']}): forget set "
                     f"{_ci(row['forget_set_forget_acc'], row['forget_set_forget_low'], row['forget_set_forget_high'])}"
                     f" ({_text(row.get('forget_set_verdict'))}) vs held-out "
                     f"{_ci(row['held_out_forget_acc'], row['held_out_forget_low'], row['held_out_forget_high'])}")
    return lines


def order_lines(report_dir: Path) -> list[str]:
    """Per dynamics label and task (and pooled): Spearman(learned at, forgotten at) with its CI, or why not."""
    import pandas as pd

    paths = sorted((report_dir / "protocol").glob("dynamics-*/order_stats.csv"))
    if not paths:
        return ["learning vs forgetting order: not in the report (no dynamics)"]
    lines = ["learning vs forgetting order, Spearman rank correlation (bootstrap 95% CI):"]
    for path in paths:
        label = path.parent.name.removeprefix("dynamics-")
        for row in pd.read_csv(path).to_dict("records"):
            rho, note = _num(row["spearman"]), _text(row.get("note"))
            if math.isfinite(rho):
                value = f"rho {_ci(rho, row['ci95_low'], row['ci95_high'])}" + (f"; {note}" if note else "")
            else:
                # the report's reason when it gives one; else its rule: too few docs, or one order is constant
                value = note if note.startswith("undefined") else \
                    "undefined: too few docs, or one order is constant" + (f" ({note})" if note else "")
            lines.append(f"  {label} {row['task']} ({int(_num(row['n_qualifying']) or 0)} of "
                         f"{int(_num(row['n_docs']) or 0)} docs learned and forgotten): {value}")
    return lines


def relearn_lines(report_dir: Path) -> list[str]:
    """Per relearn cell: held-out accuracy after forget and after relearning k docs, and the recovered share."""
    import pandas as pd

    path = report_dir / "relearn" / "relearn.csv"
    if not path.is_file():
        return ["relearning: not in the report (no relearn.csv)"]
    lines = ["relearning on k forget-set docs, held-out accuracy (95% CI):"]
    for row in pd.read_csv(path).to_dict("records"):
        note = _text(row.get("note"))
        share = (f"recovered share {_ci(row['recovered_share'], row['recovered_share_lo'], row['recovered_share_hi'])}"
                 if math.isfinite(_num(row.get("recovered_share"))) else f"recovered share {note or 'undefined'}")
        acc = {p: _ci(row.get(f"acc_{p}"), row.get(f"acc_{p}_lo"), row.get(f"acc_{p}_hi"))
               for p in ("finetuned", "forget", "relearn")}
        lines.append(f"  {row['task']} k={row['k']}: after forget {acc['forget']} -> after relearn "
                     f"{acc['relearn']} (fine-tuned {acc['finetuned']}); {share}")
    return lines


def findings_lines(report_dir: Path) -> list[str]:
    """The three findings of the report under ``report_dir`` (the analyze step's output)."""
    return [*forget_set_lines(report_dir), "", *order_lines(report_dir), "", *relearn_lines(report_dir)]
