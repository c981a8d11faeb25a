"""``lm-forget demo --quick --deep``: the how-deep attacks on the quick demo study, its finding printed last."""

from __future__ import annotations

import importlib.util

import pytest

HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


@pytest.mark.e2e
@pytest.mark.xdist_group("demo_study")
@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes not installed (pip install 'lm-forget[quantize]')")
def test_demo_deep_adds_the_attacks_and_prints_their_finding(quick_demo, tmp_path):
    import pandas as pd
    from studies import DemoStudy, copy_study, run_cli

    from lm_forget.analysis.findings import CLAIMS, Findings

    out = copy_study(quick_demo.out, tmp_path / "demo")
    done = run_cli("demo", "--quick", "--deep", "--out", str(out))
    assert done.code == 0, done.stderr[-3000:]
    plan = DemoStudy(out, done.stdout).plan()
    ran = {s.name for s in plan.steps if s.kind in ("mia", "quantized")}
    assert {"mia/pretrained/n256", "mia/finetuned/n256", "eval_quantized/finetuned/n256/int4"} <= ran
    # only the attacks (and the report) ran: every step of the plain demo was reused
    assert f"{len(ran) + 1} step(s) ran" in done.stdout
    (report,) = [s.output for s in plan.steps if s.kind == "analyze"]
    assert "## How deep is the forgetting?" in (report / "index.md").read_text()
    mia = pd.read_csv(report / "deep" / "mia.csv")
    assert set(mia["model"]) == {"pretrained", "finetuned", "forget"}
    # the demo's prepared train split holds only the study's pool: no same-split non-member, said so; the held-out
    # split comes from the same generator, so the held-out row is the comparison, with its interval
    held = mia[mia["non_members"] == "held_out"].set_index("model")
    assert (held["loss_auc_lo"] <= held["loss_auc"]).all() and (held["loss_auc"] <= held["loss_auc_hi"]).all()
    assert mia[mia["non_members"] == "same_split"]["note"].str.contains("past the study's pools").all()
    deep = Findings.read(report).get("deep")
    assert deep is not None and deep.verdict != "not in this study"
    summary = done.stdout.split("accuracy on held-out docs")[0]
    assert f"  {CLAIMS['deep']}: {deep.text}" in summary
    assert summary.index(CLAIMS["relearn"]) < summary.index(CLAIMS["deep"])  # after the usual findings
    assert "int4 forget-set accuracy" in summary and "vs held_out non-members" in summary
