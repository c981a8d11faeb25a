"""A network deadline on every Hub request: huggingface_hub's shared HTTP client, with a timeout.

huggingface_hub's default client waits forever (``timeout=None``); its documented way to change that is
``set_client_factory``. :func:`hub_deadline` installs a factory whose clients carry the timeout for the
duration of a push and puts the previous factory back afterwards. Each request (connect, read, write)
then fails after ``seconds``; the client's own retries (5xx, network, timeouts) still apply, so the whole
wait is bounded by a few times ``seconds``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from lm_forget.errors import ConfigError

logger = logging.getLogger(__name__)

TIMEOUT_ENV = "LM_FORGET_HUB_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0


class HubTimeout(Exception):
    """Namespace for recognising the Hub client's timeout errors (httpx / httpx2 ``TimeoutException``)."""

    @staticmethod
    def matches(exc: BaseException) -> bool:
        return any(cls.__name__ == "TimeoutException" and cls.__module__.startswith("httpx")
                   for cls in type(exc).__mro__) or isinstance(exc, TimeoutError)


def resolve_timeout(timeout: float | None) -> float:
    """``timeout``, else ``$LM_FORGET_HUB_TIMEOUT``, else 60 s; must be a positive number of seconds."""
    where = "--timeout"
    if timeout is None:
        raw = os.environ.get(TIMEOUT_ENV)
        if raw is None or not raw.strip():
            return DEFAULT_TIMEOUT_S
        where = TIMEOUT_ENV
        try:
            timeout = float(raw)
        except ValueError:
            raise ConfigError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds; set e.g. {TIMEOUT_ENV}=60") from None
    if not timeout > 0:
        raise ConfigError(f"{where} {timeout!r}: the Hub deadline must be a positive number of seconds, e.g. 60")
    return float(timeout)


class RequestLog:
    """The paths of the requests sent inside a :func:`hub_deadline` block (to tell what a timeout interrupted)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def record(self, request: object) -> None:
        self.paths.append(str(getattr(getattr(request, "url", None), "path", "")))

    def sent_commit(self) -> bool:
        """True once a commit request went out (it may then have landed whatever the client saw)."""
        return any("/commit/" in path for path in self.paths)


@contextmanager
def hub_deadline(seconds: float) -> Iterator[RequestLog]:
    """Within the block every huggingface_hub request times out after ``seconds``; yields the request log."""
    log = RequestLog()
    try:
        from huggingface_hub.utils import _http, set_client_factory
    except ImportError:  # huggingface_hub < 1.0 (requests): its own per-call timeouts apply
        logger.warning("this huggingface_hub has no set_client_factory; Hub requests run without a deadline")
        log.paths.append("/commit/")  # unknown: assume the worst when reporting
        yield log
        return
    previous = getattr(_http, "_GLOBAL_CLIENT_FACTORY", _http.default_client_factory)

    def factory():  # noqa: ANN202 - the client type is whatever the installed hub client uses
        client = previous()
        client.timeout = seconds
        hooks = dict(client.event_hooks)
        client.event_hooks = {**hooks, "request": [*hooks.get("request", []), log.record]}
        return client

    set_client_factory(factory)
    try:
        yield log
    finally:
        set_client_factory(previous)
