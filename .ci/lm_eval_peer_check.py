#!/usr/bin/env python
"""Peer check: lm-eval's own released tests must give the same per-test outcomes with and without our hook.

Installing lm-forget must not change what lm-eval promises. This fetches the sdist of the *installed*
lm-eval version from the package index (``pip download --no-deps --no-binary :all:``; cached), runs its
task-manager, group and CLI-subcommand tests twice against the installed packages -- start-up hook on,
then ``LM_FORGET_DISABLE_HOOK=1`` -- offline (``HF_HUB_OFFLINE=1``), and compares per-test outcomes from
junit XML. Exit 0: identical; 1: some test differs (listed); 2: the check could not run (said why).
Tests that fail identically on both sides (they need the Hub, or fixtures the sdist does not ship) are
reported as such, not hidden.

    python .ci/lm_eval_peer_check.py [--timeout 900] [--cache DIR] [--tests a.py,b.py]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

TESTS = ("tests/test_task_manager.py", "tests/test_group.py", "tests/test_cli_subcommands.py")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
HUB_HINTS = ("OfflineModeIsEnabled", "HF_HUB_OFFLINE", "huggingface.co", "LocalEntryNotFound", "on the Hub")
HOOK_STATE = "import sys; print('_lm_forget_startup' in sys.modules)"


class CheckError(Exception):
    """The check could not run; the message says why and what to do."""


def fetch_sdist(version: str, cache: Path, timeout: int) -> Path:
    """The lm-eval sdist for ``version``, from the cache or the package index."""
    cached = sorted(cache.glob(f"lm_eval-{version}.tar.gz"))
    if cached:
        return cached[0]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               f"lm-eval=={version}", "-d", tmp]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise CheckError(f"`{' '.join(cmd)}` took over {timeout} s; is the package index reachable?") from exc
        found = sorted(Path(tmp).glob("lm_eval-*.tar.gz"))
        if result.returncode != 0 or not found:
            tail = "\n".join(line for line in result.stderr.splitlines() if "is ignored" not in line)[-1500:]
            raise CheckError(f"could not fetch the lm-eval {version} sdist from the package index:\n{tail}\n"
                             f"Check network access to the index, or put lm_eval-{version}.tar.gz into {cache}.")
        target = cache / found[0].name
        shutil.move(str(found[0]), target)  # atomic within the cache folder
    return target


def extract_tests(sdist: Path, names: tuple[str, ...], out: Path) -> list[Path]:
    """Extract ``tests/`` only (not the sdist's lm_eval sources: the installed package is what we test)."""
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and "/tests/" in m.name and ".." not in m.name]
        for member in members:
            member.name = member.name.split("/", 1)[1]
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extract(member, out, **extra)
    missing = [n for n in names if not (out / n).is_file()]
    if missing:
        raise CheckError(f"{sdist.name} has no {', '.join(missing)}; pass the test files with --tests.")
    return [out / n for n in names]


def run_side(label: str, env: dict[str, str], files: list[Path], work: Path, timeout: int) -> dict[str, tuple]:
    """Run the tests once; ``{test id: (outcome, first message line)}``."""
    state = subprocess.run([sys.executable, "-c", HOOK_STATE], env=env, capture_output=True, text=True, timeout=120)
    want = "True" if "LM_FORGET_DISABLE_HOOK" not in env else "False"
    if state.stdout.strip() != want:
        raise CheckError(f"[{label}] expected the lm-forget hook armed={want}, got {state.stdout.strip() or '?'} "
                         f"({state.stderr.strip()[-500:]}); is lm-forget installed in {sys.prefix}?")
    xml_path = work / f"{label}.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", f"--junitxml={xml_path}",
           *[str(f) for f in files]]
    start = time.monotonic()
    try:
        result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise CheckError(f"[{label}] lm-eval's tests ran over {timeout} s (--timeout)") from exc
    print(f"[{label}] {result.stdout.strip().splitlines()[-1] if result.stdout.strip() else '?'} "
          f"({time.monotonic() - start:.0f} s)")
    if result.returncode not in (0, 1) or not xml_path.is_file():
        raise CheckError(f"[{label}] pytest could not run lm-eval's tests (exit {result.returncode}):\n"
                         f"{(result.stdout + result.stderr)[-2000:]}")
    outcomes: dict[str, tuple] = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in {"failure", "error", "skipped"}:
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or child.text or "").strip()
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = (outcome, message)
    return outcomes


def report(on: dict[str, tuple], off: dict[str, tuple]) -> int:
    """Print the comparison; 0 when every test has the same outcome on both sides."""
    differ = sorted(t for t in on.keys() | off.keys() if on.get(t, ("missing",))[0] != off.get(t, ("missing",))[0])
    same_bad = sorted(t for t in on.keys() & off.keys() if t not in differ and on[t][0] != "passed")
    hub = [t for t in same_bad if any(h in on[t][1] + off[t][1] for h in HUB_HINTS)]
    print(f"{len(on.keys() | off.keys())} tests; {sum(v[0] == 'passed' for v in on.values())} pass with the hook, "
          f"{sum(v[0] == 'passed' for v in off.values())} without; {len(same_bad)} fail or skip identically on both "
          f"sides ({len(hub)} need the Hub, {len(same_bad) - len(hub)} other, e.g. fixtures the sdist lacks)")
    for test in same_bad:
        tag = "needs the Hub" if test in hub else "same on both sides"
        print(f"  = {test}: {on[test][0]} ({tag}): {on[test][1].splitlines()[0][:140] if on[test][1] else ''}")
    if not differ:
        print("OK: lm-forget's hook changes no outcome of lm-eval's own tests.")
        return 0
    print(f"FAIL: {len(differ)} test(s) differ with lm-forget's hook on vs off:")
    for test in differ:
        a, b = on.get(test, ("missing", "")), off.get(test, ("missing", ""))
        why = (a[1] or b[1]).splitlines()[0][:300] if a[1] or b[1] else ""
        print(f"  ! {test}: hook on {a[0]}, hook off {b[0]}\n      {why}")
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", default=",".join(TESTS), help="comma-separated test files inside the sdist")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per side (and for the download)")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "lm_forget" / "peer_check", help="where the sdist is kept between runs")
    args = parser.parse_args()
    start = time.monotonic()
    try:
        try:
            version = metadata.version("lm-eval")
        except metadata.PackageNotFoundError as exc:
            raise CheckError(f"lm-eval is not installed in {sys.prefix}; install lm-forget first.") from exc
        sdist = fetch_sdist(version, args.cache, args.timeout)
        print(f"lm-eval {version}: tests from {sdist}")
        with tempfile.TemporaryDirectory(prefix="lm_eval_peer_") as tmp:
            work = Path(tmp)
            files = extract_tests(sdist, tuple(t.strip() for t in args.tests.split(",") if t.strip()), work)
            base = {k: v for k, v in os.environ.items()
                    if k not in {"LM_FORGET_DISABLE_HOOK", "LM_FORGET_TASKS_DIR", "PYTEST_ADDOPTS"}}
            base.update(OFFLINE)
            on = run_side("hook-on", base, files, work, args.timeout)
            off = run_side("hook-off", {**base, "LM_FORGET_DISABLE_HOOK": "1"}, files, work, args.timeout)
    except CheckError as exc:
        print(f"lm-eval peer check could not run: {exc}", file=sys.stderr)
        return 2
    code = report(on, off)
    print(f"peer check took {time.monotonic() - start:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
