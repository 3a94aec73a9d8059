"""HTTP to Microsoft Graph for one mailbox: bearer token, 429 Retry-After, backoff with jitter, 4 requests at a time.

Graph throttles per app and mailbox: at most 4 concurrent requests, and 429 with Retry-After when
over a rate. Every request passes through one process-wide semaphore per mailbox; a throttled or
dropped request is retried after Retry-After (when given) or an exponential backoff with full jitter.
Logs carry method, path template, status and Graph error code: never query strings or bodies (PHI).
"""

import email.utils
import logging
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Protocol
from urllib.parse import urlsplit

import requests

from connectors.mailbox import MailboxError, NoticeKind, NoticeLog

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_ID_SEGMENT = re.compile(r"/(messages|mailFolders|childFolders)/[^/]+")
_SEMAPHORES: dict[str, threading.BoundedSemaphore] = {}
_SEMAPHORES_LOCK = threading.Lock()


class GraphError(MailboxError):
    """Graph answered with an error status; status and Graph's error code say which."""

    def __init__(self, message: str, status: int, code: str = "") -> None:
        super().__init__(message)
        self.status, self.code = status, code


class GraphAuthError(GraphError):
    """The credentials or token were refused, or the app may not open this mailbox: retrying cannot help."""


class GraphUnreachable(MailboxError):
    """No HTTP answer at all (DNS, refused connection, timeouts) after the retries."""


class GraphAmbiguous(MailboxError):
    """A request that is not safe to repeat was sent but its answer was lost: the caller must look before retrying."""


class TokenSource(Protocol):
    """Where the bearer token comes from: O365/MSAL in production, a fixed token for the loopback stand-in."""

    def token(self) -> str: ...

    def renew(self) -> bool: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying; Retry-After beyond max_retry_after is left to the next sweep."""

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 120.0
    connect_attempts: int = 4

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)], so clients do not retry in step."""
        return random.uniform(0.0, min(self.max_delay, self.base_delay * 2 ** attempt))


def mailbox_semaphore(key: str, limit: int) -> threading.BoundedSemaphore:
    """One semaphore per mailbox per process, whichever GraphMailbox object asks for it."""
    with _SEMAPHORES_LOCK:
        if key not in _SEMAPHORES:
            _SEMAPHORES[key] = threading.BoundedSemaphore(limit)
        return _SEMAPHORES[key]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def retry_after_seconds(value: str | None, now: Callable[[], datetime] = _utcnow) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now()).total_seconds())


def path_template(url: str) -> str:
    """The request path with ids and query removed: safe to log."""
    return _ID_SEGMENT.sub(lambda m: f"/{m.group(1)}/{{id}}", urlsplit(url).path)


def graph_error_code(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", {}).get("code", ""))
    except ValueError:
        return ""


class GraphHttp:
    """Authenticated, throttling-aware requests against one Graph service URL."""

    def __init__(self, session: requests.Session, service_url: str, tokens: TokenSource,
                 semaphore: threading.BoundedSemaphore, policy: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], None] = time.sleep, timeout: tuple[float, float] = (10.0, 60.0)) -> None:
        self.session, self.service_url, self.tokens = session, service_url, tokens
        self.semaphore, self.policy, self.sleep, self.timeout = semaphore, policy, sleep, timeout
        # Handled faults (throttling, retried requests) for the sweep's audit trail; GraphMailbox drains them.
        self.notices = NoticeLog()

    def url(self, path: str) -> str:
        return self.service_url + path.lstrip("/")

    def owns(self, url: str) -> bool:
        """Only links under our own service URL are followed: the token never leaves for another host."""
        return url.startswith(self.service_url)

    def request(self, method: str, url: str, *, params: dict | None = None, json: Any = None,
                headers: dict | None = None, idempotent: bool | None = None) -> requests.Response:
        """One Graph call with retries; returns the 2xx response or raises GraphError / GraphUnreachable.

        A POST that creates something (createReply, send) is not repeated once it may have reached the
        server: a lost answer raises GraphAmbiguous and the caller looks for the result before retrying.
        """
        if idempotent is None:
            idempotent = method.upper() != "POST"
        if not self.owns(url):
            raise MailboxError(f"refusing to follow a link outside {self.service_url}")
        where = f"{method} {path_template(url)}"
        renewed = False
        transport_failures = 0
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.semaphore:
                    response = self.session.request(
                        method, url, params=params, json=json, timeout=self.timeout,
                        headers={**(headers or {}), "Authorization": f"Bearer {self.tokens.token()}"},
                    )
            except TRANSPORT_ERRORS as exc:
                transport_failures += 1
                refused = isinstance(exc, requests.ConnectionError) and _never_connected(exc)
                if not idempotent and not refused:
                    raise GraphAmbiguous(f"Graph {where}: the answer was lost ({type(exc).__name__})") from None
                limit = self.policy.connect_attempts if refused else self.policy.max_attempts
                if transport_failures >= limit:
                    raise GraphUnreachable(f"cannot reach Microsoft Graph at {_host(url)} ({where}): "
                                           f"{type(exc).__name__} after {transport_failures} attempts") from None
                delay = self.policy.backoff(transport_failures - 1)
                log.warning("Graph %s: %s; retrying in %.1f s", where, type(exc).__name__, delay)
                self.notices.record(NoticeKind.request_retried, 1, f"{method} {type(exc).__name__}", delay)
                self.sleep(delay)
                continue
            status = response.status_code
            if status < 400:
                return response
            code = graph_error_code(response)
            if status == 401 and not renewed and self.tokens.renew():
                renewed = True
                continue
            if status in (401, 403):
                raise GraphAuthError(_auth_message(status, code, where), status, code)
            if status != 429 and not idempotent and status in RETRY_STATUSES:
                raise GraphAmbiguous(f"Graph {where}: HTTP {status} {code}; the request may have been applied")
            if status in RETRY_STATUSES and attempt < self.policy.max_attempts:
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is not None and wait > self.policy.max_retry_after:
                    self.notices.record(NoticeKind.throttled, 1, f"HTTP {status}, Retry-After {wait:.0f} s: "
                                                                 "left to the next sweep")
                    raise GraphError(f"Graph {where}: throttled for {wait:.0f} s; leaving it to the next sweep",
                                     status, code)
                delay = wait if wait is not None else self.policy.backoff(attempt - 1)
                log.warning("Graph %s: HTTP %d %s; retrying in %.1f s (%s)", where, status, code, delay,
                            "Retry-After" if wait is not None else "backoff")
                kind = NoticeKind.throttled if status == 429 else NoticeKind.request_retried
                self.notices.record(kind, 1, f"HTTP {status}", delay)
                self.sleep(delay)
                continue
            raise GraphError(f"Graph {where}: HTTP {status} {code}".rstrip(), status, code)

    def json(self, method: str, path_or_url: str, **kwargs: Any) -> dict:
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else self.url(path_or_url)
        response = self.request(method, url, **kwargs)
        return response.json() if response.content else {}


def _auth_message(status: int, code: str, where: str) -> str:
    if status == 401:
        return (f"Microsoft Graph rejected the access token ({code or 'HTTP 401'}) on {where}: check the tenant id, "
                "client id and secret or certificate of the app registration")
    return (f"Microsoft Graph refused access ({code or 'HTTP 403'}) on {where}: the app needs the application "
            "permissions Mail.ReadWrite and Mail.Send with admin consent, and the mailbox must be in the group "
            "of its Exchange application access policy (docs/microsoft365.md)")


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _never_connected(exc: requests.ConnectionError) -> bool:
    """A refused or unresolvable connection (nothing was sent), as opposed to one dropped mid-answer."""
    text = repr(exc)
    return any(marker in text for marker in ("NewConnectionError", "NameResolutionError", "ConnectTimeout",
                                             "Connection refused", "Failed to establish"))
