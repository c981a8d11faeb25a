"""``lm-forget push DIR REPO``: push a trained run folder (adapter + card) to the Hugging Face Hub."""

from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lm-forget push",
        description="Push an `lm-forget train` output folder to the Hugging Face Hub with a rendered model card. "
        "The token comes from HF_TOKEN or `hf auth login`; checkpoints and pickles are never uploaded.",
    )
    parser.add_argument("folder", help="output folder of `lm-forget train`")
    parser.add_argument("repo_id", help="Hub repo id, e.g. me/llama2-7b-forget-boolq")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--revision", default=None, help="branch to push to (created if missing)")
    parser.add_argument(
        "--eval-results",
        action="append",
        default=[],
        metavar="[NAME=]RESULTS_JSON",
        help="lm_eval results.json; unnamed = this model's own results (model-index). Repeat with "
        "pretrained=FILE / fine-tuned=FILE to add baseline columns to the card's table.",
    )
    parser.add_argument("--commit-message", default=None, help="commit message")
    return parser


def parse_eval_results(items: list[str]) -> dict[str, str] | None:
    """``["a.json", "pretrained=b.json"]`` -> ``{"self": "a.json", "pretrained": "b.json"}``."""
    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        out[name if sep else "self"] = path if sep else item
    return out


def main(argv: list[str]) -> int:
    """Entry point of ``lm-forget push``."""
    from lm_forget.hub.push import push_folder

    args = build_parser().parse_args(argv)
    url = push_folder(
        args.folder,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        eval_results=parse_eval_results(args.eval_results),
        commit_message=args.commit_message,
    )
    print(f"pushed {args.folder} -> {url}")
    return 0
