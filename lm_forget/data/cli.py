"""``lm-forget tasks list | show NAME | build NAME... | derive SOURCE... | path | push REPO_ID``."""

from __future__ import annotations

import argparse
import fnmatch
import json
from pathlib import Path

from lm_forget.data.config import DataConfig
from lm_forget.data.registry import SUITE, suite_task_names


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    defaults = DataConfig()
    # one name per setting: --data-seed as in `lm-forget features` (data.seed in a study; under `train`, --seed
    # is the training seed)
    parser.add_argument("--data-seed", dest="data_seed", type=int, default=defaults.seed,
                        help="data seed (the run config's data.seed; default: %(default)s)")
    parser.add_argument("--train-size", type=int, default=defaults.train_size,
                        help="forget pool size (default: %(default)s)")
    parser.add_argument("--eval-size", type=int, default=defaults.eval_size,
                        help="evaluation split size (default: %(default)s)")
    parser.add_argument("--task-dirs", "--task-dir", "--include-path", dest="task_dirs", action="append",
                        default=[], metavar="DIR",
                        help="extra folder with forget task YAMLs, repeatable (tasks.task_dirs; also: "
                        "LM_FORGET_TASKS_DIR)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lm-forget tasks", description="The forget_* task suite.")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="list the suite (and derived tasks)").add_argument(
        "--task-dirs", "--task-dir", "--include-path", dest="task_dirs", action="append", default=[], metavar="DIR",
        help="extra folder with forget task YAMLs, repeatable (also: LM_FORGET_TASKS_DIR)")
    show = sub.add_parser("show", help="source, split sizes, drops by reason, one rendered doc")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print the build report as JSON")
    _add_data_options(show)
    build = sub.add_parser("build", help="build (and cache) tasks; names may be patterns like 'forget_*'")
    build.add_argument("names", nargs="+")
    build.add_argument("--refresh", action="store_true", help="rebuild even when cached")
    _add_data_options(build)
    derive = sub.add_parser("derive", help="make forget_<source> from any lm-eval multiple-choice task")
    derive.add_argument("sources", nargs="+", metavar="SOURCE")
    derive.add_argument("--out", type=Path, default=None,
                        help="folder for the YAMLs (default: first LM_FORGET_TASKS_DIR entry, else ./forget_tasks)")
    _add_data_options(derive)
    sub.add_parser("path", help="print the folder of the suite's YAMLs (for lm_eval --include_path)")
    push = sub.add_parser("push", help="push the built suite to the Hub as a dataset (one config per task)")
    push.add_argument("repo_id", help="Hub dataset repo id, e.g. me/lm-forget-suite")
    push.add_argument("names", nargs="*", default=["forget_*"], help="tasks or patterns (default: 'forget_*')")
    push.add_argument("--private", action="store_true", help="create the dataset repo as private")
    push.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                      help="network deadline of each Hub request (default: LM_FORGET_HUB_TIMEOUT or 60)")
    _add_data_options(push)
    return parser


def _list(args: argparse.Namespace) -> int:
    from lm_forget.data.api import yaml_tasks

    print(f"{'task':24} {'source (lm-eval)':18} {'domain':24} prompt rewrite")
    for spec in SUITE:
        print(f"{spec.name:24} {spec.source_task:18} {spec.domain:24} {spec.rewrite}")
    derived = {k: v for k, v in yaml_tasks(args.task_dirs).items()
               if k not in set(suite_task_names())}
    for name, kwargs in sorted(derived.items()):
        print(f"{name:24} {str(kwargs.get('source_task', '-')):18} {'derived':24} {kwargs.get('rewrite', '-')}")
    print(f"\n{len(SUITE)} suite tasks" + (f", {len(derived)} derived" if derived else "")
          + ". Evaluate: lm_eval --model hf --model_args pretrained=MODEL --tasks 'forget_*'")
    return 0


def _expand(names: list[str], task_dirs: list[str]) -> list[str]:
    from lm_forget.data.api import yaml_tasks

    known = list(dict.fromkeys([*suite_task_names(), *yaml_tasks(task_dirs)]))
    out: list[str] = []
    for name in names:
        if any(ch in name for ch in "*?["):
            matches = fnmatch.filter(known, name)
            if not matches:
                from lm_forget.errors import ConfigError

                raise ConfigError(f"no forget task matches {name!r}; `lm-forget tasks list` shows them.")
            out += matches
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def _format_report(report: dict) -> str:
    lines = [f"{report['task']}  <-  lm-eval task {report['source_task']} ({report.get('domain', '')})"]
    if report.get("note"):
        lines.append(f"  note: {report['note']}")
    for split, label in (("train", "forget pool"), ("test", "evaluation")):
        info = report["splits"][split]
        dropped = ", ".join(f"{k} {v}" for k, v in info["dropped"].items()) or "none"
        lines.append(f"  {label:11} {info['size']:>5} docs  (source {report['sources'][split]}: "
                     f"{info['source_rows']} rows; after dedup {info['available']}; dropped: {dropped})")
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    from lm_forget.data.api import load_task

    built = load_task(args.name, task_dirs=args.task_dirs, seed=args.data_seed, train_size=args.train_size,
                      eval_size=args.eval_size, progress=True)
    if args.json:
        print(json.dumps(built.report, indent=2, sort_keys=True))
        return 0
    if "splits" in built.report:
        print(_format_report(built.report))
    doc = built.splits["test"][0]
    print("\nexample (evaluation split):")
    print(f"  id: {doc['id']}")
    if doc.get("continuation"):
        for i, ctx in enumerate(doc["choices"]):
            print(f"  context {i}{' (gold)' if i == doc['label'] else ''}: {ctx!r}")
        print(f"  shared continuation: {doc['continuation']!r}")
    else:
        print("  prompt:\n" + "\n".join("    | " + line for line in doc["prompt"].split("\n")))
        for i, choice in enumerate(doc["choices"]):
            print(f"  choice {i}{' (gold)' if i == doc['label'] else ''}: {choice!r}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from lm_forget.data.api import load_task

    names = _expand(args.names, args.task_dirs)
    for name in tqdm(names, desc="building tasks", unit="task", disable=len(names) < 2):
        built = load_task(name, task_dirs=args.task_dirs, seed=args.data_seed, train_size=args.train_size,
                          eval_size=args.eval_size, refresh=args.refresh, progress=True)
        tqdm.write(f"{name}: {len(built.splits['train'])} train / {len(built.splits['test'])} test docs")
    return 0


def _derive(args: argparse.Namespace) -> int:
    from lm_forget.data.derive import derive_tasks

    out = args.out
    if out is None:
        from lm_forget._startup import tasks_dir_entries

        env = tasks_dir_entries()
        out = Path(env[0]) if env else Path("forget_tasks")
    config = DataConfig(seed=args.data_seed, train_size=args.train_size, eval_size=args.eval_size)
    for path, built in derive_tasks(args.sources, out.expanduser(), config=config, progress=True):
        print(_format_report(built.report))
        print(f"  wrote {path}")
    print(f"\nUse them: lm_eval --include_path {out} --tasks ...   (or export LM_FORGET_TASKS_DIR={out.resolve()})")
    return 0


def _push(args: argparse.Namespace) -> int:
    from lm_forget.hub.dataset import push_suite

    config = DataConfig(seed=args.data_seed, train_size=args.train_size, eval_size=args.eval_size)
    names = _expand(args.names, args.task_dirs)
    url = push_suite(args.repo_id, names, config, task_dirs=args.task_dirs, private=args.private,
                     timeout=args.timeout)
    print(f"pushed {len(names)} tasks -> {url}\nload one: datasets.load_dataset({args.repo_id!r}, {names[0]!r})")
    return 0


def main(argv: list[str]) -> int:
    """Entry point of ``lm-forget tasks``."""
    from lm_forget.hub.cli import refuse_token_flags

    refuse_token_flags(argv)
    args = _parser().parse_args(argv)
    if args.action == "path":
        from lm_forget.paths import task_configs_dir

        print(task_configs_dir())
        return 0
    return {"list": _list, "show": _show, "build": _build, "derive": _derive, "push": _push}[args.action](args)
