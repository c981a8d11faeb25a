"""Push a finished run folder to the Hugging Face Hub with ``huggingface_hub`` (create_repo + create_commit).

Only what is meant (an allow-list, :mod:`lm_forget.hub.files`), only when finished (``status: done`` in
forget_config.json), never hanging (every Hub call under a network deadline, :mod:`lm_forget.hub.deadline`).
Everything is checked and the card rendered in memory before the first request, and the folder is only
updated (README.md, eval_results.json) after the commit landed: a failed push leaves it exactly as it was.
The token comes from where the Hub client looks (``HF_TOKEN``, ``hf auth login``); lm-forget never reads it
into a message, a log line or a file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_forget.errors import ConfigError, HubError
from lm_forget.formats import CARD_FILE, EVAL_RESULTS_FILE, RUN_STATE_FILE
from lm_forget.hub.base_model import require_hub_base_model, require_repo_id
from lm_forget.hub.card import EvalSource, normalize_eval_sources, render_card
from lm_forget.hub.deadline import HubTimeout, RequestLog, hub_deadline, resolve_timeout
from lm_forget.hub.files import files_to_upload
from lm_forget.io import atomic_write_bytes

logger = logging.getLogger(__name__)

#: The accuracies a card was rendered with, kept beside it so a later push keeps them
#: Whole-call attempts. The Hub client retries uploads and pre-upload checks itself (``http_backoff``), but
#: not the commit request: huggingface_hub 2.4 ``create_commit`` posts it without retries
#: (``_commit_api._send_commit(retry_on_error=False)``), so a 5xx there is retried here, once (a commit is
#: atomic, so a failed attempt changed nothing). Drop this when the client retries commits.
RETRIES = 2
RETRY_WAIT_S = 1.0


def check_pushable(folder: Path) -> dict[str, Any]:
    """The run record of ``folder``; refuses a folder that is not a run, or a run that did not finish."""
    state_file = folder / RUN_STATE_FILE
    if not state_file.is_file():
        raise ConfigError(f"{folder} is not an lm-forget run folder (no forget_config.json); pass the --output_dir "
                          "of `lm-forget train`")
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{state_file} is not valid JSON ({exc}); rerun the training to rewrite it") from None
    if state.get("status") != "done":
        raise ConfigError(
            f"{folder} holds a run that did not finish (forget_config.json status: {state.get('status')!r}); "
            "nothing was pushed. Finish it first (`lm-forget train ... --resume`), then push."
        )
    return state


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    eval_results: EvalSource | Mapping[str, EvalSource] | None = None,
    commit_message: str | None = None,
    base_model_id: str | None = None,
    suite_dataset: str | None = None,
    timeout: float | None = None,
) -> str:
    """Upload the allowed files of ``folder`` and its card (with ``eval_results``) as one commit; returns its URL.

    ``timeout`` (seconds; default ``LM_FORGET_HUB_TIMEOUT`` or 60) bounds every Hub request.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    folder = Path(folder)
    require_repo_id(repo_id, "the Hub repo")
    state = check_pushable(folder)
    base = require_hub_base_model(state.get("model"), base_model_id or state.get("base_model_id")
                                  or (state.get("gguf") or {}).get("hub_id"), state.get("gguf_file"))
    seconds = resolve_timeout(timeout)
    if eval_results is None and (folder / EVAL_RESULTS_FILE).is_file():
        eval_results = json.loads((folder / EVAL_RESULTS_FILE).read_text(encoding="utf-8"))  # from an earlier push
    card = render_card(folder, repo_id=repo_id, eval_results=eval_results, base_model_id=base,
                       suite_dataset=suite_dataset)
    generated = {CARD_FILE: str(card).encode("utf-8")}
    if eval_results is not None:
        columns = normalize_eval_sources(eval_results, state.get("stage", "forget"))
        # strict JSON: an undefined (NaN) metric is written as null, never as a bare NaN other readers reject
        generated[EVAL_RESULTS_FILE] = (json.dumps(_as_results(columns), indent=2, allow_nan=False)
                                        + "\n").encode("utf-8")
    uploaded, skipped = files_to_upload(folder)
    if skipped:
        logger.info("not uploaded (not on the allow-list): %s", ", ".join(skipped))
    require_token(get_token(), repo_id)
    operations = [CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p)) for p in uploaded]
    operations += [CommitOperationAdd(path_in_repo=name, path_or_fileobj=data) for name, data in generated.items()]
    message = commit_message or f"Upload lm-forget run {folder.name}"
    with hub_deadline(seconds) as requests:
        api = HfApi()
        hub_call(lambda: api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model"),
              f"create repo {repo_id}", seconds, requests)
        if private:
            refuse_public(api, repo_id, "model", seconds, requests)
        if revision:
            hub_call(lambda: api.create_branch(repo_id, branch=revision, exist_ok=True), f"create branch {revision}",
                  seconds, requests)
        info = hub_call(
            lambda: api.create_commit(repo_id=repo_id, operations=operations, commit_message=message,
                                      revision=revision),
            f"commit {len(operations)} files of {folder} to {repo_id}", seconds, requests,
        )
    for name, data in generated.items():  # the folder now shows what the Hub holds
        atomic_write_bytes(folder / name, data)
    url = str(getattr(info, "commit_url", info))
    logger.info("pushed %s to %s", folder, url)
    return url


def refuse_public(api: Any, repo_id: str, repo_type: str, seconds: float, requests: RequestLog | None) -> None:
    """``--private`` asked for, but the repo already existed and is public: create_repo(exist_ok) leaves an
    existing repo's visibility alone, so say so before anything is committed."""
    info = hub_call(lambda: api.repo_info(repo_id, repo_type=repo_type), f"read {repo_id}", seconds, requests)
    if not getattr(info, "private", True):
        raise HubError(f"{repo_id} already exists and is public; --private does not change an existing repo's "
                       "visibility, so nothing was committed. Make it private in its settings on the Hub, or push "
                       "without --private.")


def require_token(token: str | None, repo_id: str) -> None:
    """A HubError (never echoing the token) when there is none, or when it cannot go into an HTTP header."""
    if not token:
        raise HubError(f"no Hugging Face token found, so {repo_id} cannot be written. Set HF_TOKEN or run "
                       "`hf auth login`, then push again.")
    if not token.isascii() or not token.isprintable():
        raise HubError("the Hugging Face token (HF_TOKEN or `hf auth login`) holds non-ASCII or invisible characters "
                       "(a copy-paste error?); Hub tokens are plain ASCII (hf_...). Set it again; nothing was sent.")


def _as_results(columns: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """``{column: lm_eval-shaped results}``: re-readable by ``normalize_eval_sources``."""
    import math

    return {column: {"results": {task: {"acc,none": acc if math.isfinite(acc) else None}
                                 for task, acc in accs.items()}}
            for column, accs in columns.items()}


def hub_call(fn: Any, what: str, seconds: float, requests: RequestLog | None = None) -> Any:
    """Run a Hub call; retry transient failures (5xx, network); turn the rest into a HubError.

    A timeout is not retried by us (the client already retried it). When a commit request had gone out
    before the timeout it may have landed (the Hub can apply it after the answer was lost): the message
    says which.
    """
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
            sent = requests is None or requests.sent_commit()
            landed = ("the commit was sent and may have landed: check the repo's history on the Hub before "
                      "pushing again (pushing again is safe: it adds at most one identical commit)"
                      if sent else "nothing was committed")
            if isinstance(exc, HubTimeout) or HubTimeout.matches(exc):
                raise HubError(
                    f"cannot {what}: the Hub did not answer within the {seconds:g} s request deadline; {landed}. "
                    "Raise the deadline with --timeout SECONDS or LM_FORGET_HUB_TIMEOUT."
                ) from None
            if isinstance(exc, ValueError) and "json" in f"{type(exc).__name__} {exc}".lower():
                raise HubError(f"cannot {what}: the answer was not the Hub's JSON (a proxy or login page? check "
                               f"HF_ENDPOINT); {landed}.") from None
            # network failures: OSError, or the Hub client's HTTP library's transport errors
            if not (isinstance(exc, OSError) or type(exc).__module__.split(".")[0].startswith(("httpx", "requests"))):
                raise
            # cut after the commit went out: like a timeout, it may have landed (a retry could add it twice)
            if requests is not None and requests.sent_commit():
                raise HubError(f"cannot {what}: the connection broke ({exc.__class__.__name__}); {landed}.") from None
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
