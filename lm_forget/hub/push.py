"""Push a run folder to the Hugging Face Hub with ``huggingface_hub`` (create_repo + upload_folder).

The token comes from where the Hub client looks (``HF_TOKEN``, ``hf auth login``); lm-forget never
reads it into a message, a log line or a file. A push is one commit: a failed attempt leaves the
revision as it was, so retrying is safe.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_forget.errors import ConfigError, HubError
from lm_forget.hub.card import EvalSource, normalize_eval_sources, render_card

logger = logging.getLogger(__name__)

#: Never uploaded: checkpoints and anything pickled (training_args.bin, optimizer/RNG states).
IGNORE_PATTERNS = [
    "checkpoints/*", "checkpoint-*", "*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt", "*.tmp",
    "runs/*", ".cache/*",
]
#: The accuracies a card was rendered with, kept beside it so a later push keeps them
EVAL_FILE = "eval_results.json"
#: Whole-call attempts. The Hub client already retries each request on 5xx/network errors with backoff;
#: this retries the call once more (a commit is atomic, so a failed attempt changed nothing).
RETRIES = 2
RETRY_WAIT_S = 1.0


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    eval_results: EvalSource | Mapping[str, EvalSource] | None = None,
    commit_message: str | None = None,
) -> str:
    """Render the card (with ``eval_results`` if given), then upload ``folder`` as one commit; returns its URL."""
    from huggingface_hub import HfApi, get_token

    folder = Path(folder)
    if not (folder / "forget_config.json").is_file():
        raise ConfigError(f"{folder} is not an lm-forget run folder (no forget_config.json); pass the --output_dir "
                          "of `lm-forget train`")
    if eval_results is None and (folder / EVAL_FILE).is_file():
        eval_results = json.loads((folder / EVAL_FILE).read_text(encoding="utf-8"))  # from an earlier push
    card = render_card(folder, repo_id=repo_id, eval_results=eval_results)
    if eval_results is not None:
        stage = json.loads((folder / "forget_config.json").read_text(encoding="utf-8")).get("stage", "forget")
        columns = normalize_eval_sources(eval_results, stage)
        (folder / EVAL_FILE).write_text(json.dumps(_as_results(columns), indent=2) + "\n", encoding="utf-8")
    card.save(folder / "README.md")
    if not get_token():
        raise HubError(f"no Hugging Face token found, so {repo_id} cannot be written. Set HF_TOKEN or run "
                       "`hf auth login`, then push again.")
    api = HfApi()
    message = commit_message or f"Upload lm-forget run {folder.name}"
    _call(lambda: api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model"),
          f"create repo {repo_id}")
    if revision:
        _call(lambda: api.create_branch(repo_id, branch=revision, exist_ok=True), f"create branch {revision}")
    info = _call(
        lambda: api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            revision=revision,
            commit_message=message,
            ignore_patterns=IGNORE_PATTERNS,
        ),
        f"upload {folder} to {repo_id}",
    )
    url = str(getattr(info, "commit_url", info))
    logger.info("pushed %s to %s", folder, url)
    return url


def _as_results(columns: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """``{column: lm_eval-shaped results}``: re-readable by ``normalize_eval_sources``."""
    return {column: {"results": {task: {"acc,none": acc} for task, acc in accs.items()}}
            for column, accs in columns.items()}


def _call(fn: Any, what: str) -> Any:
    """Run a Hub call; retry transient failures (5xx, network); turn the rest into a HubError."""
    from huggingface_hub.errors import HfHubHTTPError

    for attempt in range(1, RETRIES + 1):
        try:
            return fn()
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (401, 403):
                raise HubError(
                    f"cannot {what}: the Hub refused the token (HTTP {status}). Check that HF_TOKEN / "
                    "`hf auth login` holds a token with write access to that namespace."
                ) from None
            if status is None or status < 500 or attempt == RETRIES:
                raise HubError(f"cannot {what}: HTTP {status}: {_server_message(exc)}") from None
        except Exception as exc:
            # network failures: OSError, or the Hub client's HTTP library's transport errors
            if not (isinstance(exc, OSError) or type(exc).__module__.split(".")[0].startswith("httpx")):
                raise
            if attempt == RETRIES:
                raise HubError(f"cannot {what}: network error ({exc.__class__.__name__})") from None
        logger.warning("%s failed (attempt %d/%d), retrying", what, attempt, RETRIES)
        time.sleep(RETRY_WAIT_S * attempt)
    raise AssertionError("unreachable")


def _server_message(exc: Any) -> str:
    # The server's message only: never the request (its headers carry the token).
    server = getattr(exc, "server_message", None)
    if server:
        return str(server).strip().splitlines()[0]
    return str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
