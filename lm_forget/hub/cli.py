"""``lm-forget push DIR REPO``: push a trained run folder (adapter + card) to the Hugging Face Hub."""

from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lm-forget push",
        description="Push an `lm-forget train` output folder to the Hugging Face Hub with a rendered model card. "
        "The token comes from HF_TOKEN or `hf auth login` (never a flag). Only the adapter/model safetensors, "
        "tokenizer and adapter configs, the card and lm-forget's JSON/JSONL records are uploaded, and only "
        "for a run that finished.",
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
        "pretrained=FILE / finetuned=FILE (phase names) to add baseline columns to the card's table.",
    )
    parser.add_argument("--commit-message", default=None, help="commit message")
    parser.add_argument(
        "--base-model-id", default=None, metavar="ORG/NAME",
        help="Hub id of the base model, when the run's --model was a local folder that does not record one")
    parser.add_argument("--suite-dataset", default=None, metavar="REPO_ID",
                        help="Hub dataset of the suite (`lm-forget tasks push`), cited by the card's model-index")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="network deadline of each Hub request (default: LM_FORGET_HUB_TIMEOUT or 60)")
    return parser


#: Flags that would carry a token: refused before parsing, so the value is never echoed or stored
TOKEN_FLAGS = ("--token", "--hub_token", "--hub-token", "--hf_token", "--hf-token")


def refuse_token_flags(argv: list[str]) -> None:
    """Refuse a token on the command line, naming the flag only (argparse would echo the value)."""
    from lm_forget.errors import ConfigError

    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag in TOKEN_FLAGS:
            raise ConfigError(f"{flag} is not accepted: a token on the command line ends up in shell history and "
                              "logs. Set HF_TOKEN or run `hf auth login` instead (nothing was pushed).")


def parse_eval_results(items: list[str]) -> dict[str, str] | None:
    """``["a.json", "pretrained=b.json"]`` -> ``{"": "a.json", "pretrained": "b.json"}`` (unnamed: the run's own)."""
    if not items:
        return None
    from lm_forget.errors import ConfigError, did_you_mean
    from lm_forget.hub.card import PHASES

    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if sep and name not in PHASES:
            raise ConfigError(f"--eval-results {item}: {name!r} is not a phase.{did_you_mean(name, list(PHASES))} "
                              f"Name a baseline by its phase ({', '.join(PHASES)}), e.g. pretrained=FILE.")
        out[name if sep else ""] = path if sep else item
    return out


def main(argv: list[str]) -> int:
    """Entry point of ``lm-forget push``."""
    from lm_forget.hub.push import push_folder

    refuse_token_flags(argv)
    args = build_parser().parse_args(argv)
    url = push_folder(
        args.folder,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        eval_results=parse_eval_results(args.eval_results),
        commit_message=args.commit_message,
        base_model_id=args.base_model_id,
        suite_dataset=args.suite_dataset,
        timeout=args.timeout,
    )
    print(f"pushed {args.folder} -> {url}")
    return 0
