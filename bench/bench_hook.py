"""Start-up hook cost: ``python -c pass`` with the hook on vs off, interleaved in one run (median).

Three views of the same cost, all measured in this run:
- wall time of ``python -c pass``, hook on vs ``LM_FORGET_DISABLE_HOOK=1`` (the .pth then imports nothing):
  the ratio and the difference of medians;
- ``python -X importtime``: cumulative import time of ``_lm_forget_startup`` (what the .pth imports);
- the same for ``import lm_forget._startup`` (the package path the .pth used before), for comparison.

    python bench/bench_hook.py [--runs 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s+(\S.*)$")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"LM_FORGET_DISABLE_HOOK", "PYTHONDONTWRITEBYTECODE"}}
    return {**env, **extra}


def _wall(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - start


def _import_us(code: str, names: set[str], env: dict[str, str]) -> int:
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True,
                         text=True, check=True).stderr
    return max((int(m.group(2)) for m in map(IMPORT_LINE.search, err.splitlines())
                if m and m.group(3).strip() in names), default=0)


def bench(runs: int) -> dict:
    """Interleaved measurements; medians in ms."""
    # as after `pip install`: bytecode compiled
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "lm_forget"),
                    str(REPO / "_lm_forget_startup.py")], check=True, capture_output=True, env=_env())
    on_env, off_env = _env(), _env(LM_FORGET_DISABLE_HOOK="1")
    for _ in range(5):  # warm the page cache
        _wall(on_env), _wall(off_env)
    on, off, hook_us, package_us = [], [], [], []
    for _ in range(runs):
        on.append(_wall(on_env))
        off.append(_wall(off_env))
    for _ in range(max(runs // 4, 10)):
        hook_us.append(_import_us("pass", {"_lm_forget_startup"}, on_env))
        package_us.append(_import_us("import lm_forget._startup", {"lm_forget", "lm_forget._startup"}, off_env))
    on_ms, off_ms = statistics.median(on) * 1e3, statistics.median(off) * 1e3
    return {"runs": runs, "python_c_pass_hook_on_ms": on_ms, "python_c_pass_hook_off_ms": off_ms,
            "ratio": on_ms / off_ms, "difference_ms": on_ms - off_ms,
            "hook_import_ms": statistics.median(hook_us) / 1e3,
            "package_path_import_ms": statistics.median(package_us) / 1e3,
            "load_average": os.getloadavg()[0], "cpus": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    r = bench(args.runs)
    print("| benchmark | result | target |\n|---|---|---|")
    print(f"| `python -c pass`, hook on vs off (median of {r['runs']}, interleaved) | "
          f"{r['python_c_pass_hook_on_ms']:.1f} vs {r['python_c_pass_hook_off_ms']:.1f} ms = "
          f"**{r['ratio']:.3f}x** ({r['difference_ms']:+.2f} ms) | - |")
    print(f"| hook import at interpreter start (`-X importtime`, `_lm_forget_startup`) | "
          f"**{r['hook_import_ms']:.2f} ms** | < 1 ms |")
    print(f"| same via the package (`lm_forget` + `lm_forget._startup`, the old .pth path) | "
          f"{r['package_path_import_ms']:.2f} ms | - |")
    print(f"(load average {r['load_average']:.1f} on {r['cpus']} CPUs)")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
