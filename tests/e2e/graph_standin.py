"""A stand-in for Microsoft Graph mail and Entra ID sign-in on 127.0.0.1, with fault injection.

Speaks Graph's JSON for what the connector uses: mailFolders (well-known names, displayName filter,
create with 409 on a duplicate), delta rounds (Prefer odata.maxpagesize, default 10 per page,
@odata.nextLink/@odata.deltaLink, 410 SyncStateNotFound once tokens expire), messages with $select,
$filter on internetMessageId or a single-value extended property, $expand of extended properties,
$value MIME, PATCH (body and recipients only on drafts), move, createReply, send; bearer tokens
(401 InvalidAuthenticationToken), an application access policy (403 for other mailboxes), Exchange's
limit of 4 concurrent requests per mailbox (429 ApplicationThrottled), and the client-credentials
token endpoint (secret or certificate assertion) that MSAL calls.
"""

import json
import re
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509

from tests.e2e.graph_standin_routes import login_route, mail_route
from tests.e2e.graph_standin_store import GraphFault, MailboxStore


@dataclass
class Fault:
    """One injected fault: matching requests (regex on "METHOD /path", and on the body when given) after `after`
    of them, `times` times.

    kind: throttle (429, Retry-After when given), error (status/code), drop (the request is applied, then the
    connection closes halfway through the answer), hang (held unanswered until released, never applied).
    """

    kind: str
    match: str
    body: str | None = None
    after: int = 0
    times: int = 1
    retry_after: str | None = None
    status: int = 503
    code: str = "ServiceUnavailable"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client killed mid-request (the crash tests do that on purpose) is not a server error.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class GraphStandIn:
    """The server; tests read and change `store` directly (deliver mail, delete a message, inspect drafts)."""

    def __init__(self, mailbox: str = "apotek@soendergade-apotek.example", *, tenant: str = "standin-tenant",
                 client_id: str = "standin-client", client_secret: str = "standin-secret",
                 token: str = "standin-token", certificate_pem: bytes | None = None, latency: float = 0.0,
                 concurrency_limit: int = 4) -> None:
        self.mailbox, self.tenant, self.client_id, self.client_secret = mailbox, tenant, client_id, client_secret
        self.certificate = x509.load_pem_x509_certificate(certificate_pem) if certificate_pem else None
        self.tokens = {token}
        self.latency, self.concurrency_limit = latency, concurrency_limit
        self.store = MailboxStore(mailbox)
        self.faults: list[Fault] = []
        self.log: list[dict] = []
        self.token_requests = 0
        self.in_flight = self.max_in_flight = 0
        self.hanging, self.release = threading.Event(), threading.Event()
        self._delta: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> "GraphStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "GraphStandIn":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="graph-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def add_fault(self, kind: str, match: str, **kwargs) -> Fault:
        fault = Fault(kind, match, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def expire_delta_tokens(self) -> None:
        """Exchange dropped its sync state: every saved nextLink/deltaLink now answers 410 Gone."""
        with self._lock:
            self._delta.clear()

    def requests_matching(self, pattern: str) -> list[dict]:
        return [entry for entry in self.log if re.search(pattern, f"{entry['method']} {entry['path']}")]

    # Plumbing used by the handler

    def release_hangs(self) -> None:
        """Let held requests go (their connections close unanswered) and arm a fresh hang."""
        release, self.release, self.hanging = self.release, threading.Event(), threading.Event()
        release.set()

    def _take_fault(self, where: str, body: bytes) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and re.search(fault.match, where) and (
                        fault.body is None or re.search(fault.body, body.decode(errors="replace"))):
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    fault.times -= 1
                    return fault
        return None

    def _enter(self) -> bool:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.in_flight <= self.concurrency_limit

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _new_token(self, entry: dict) -> str:
        token = secrets.token_hex(12)
        with self._lock:
            self._delta[token] = entry
        return token

    def _delta_entry(self, token: str) -> dict:
        with self._lock:
            entry = self._delta.get(token)
        if entry is None:
            raise GraphFault(410, "SyncStateNotFound", "The sync state generation is not found. The delta token is "
                                                       "expired and data must be synchronized again.")
        return entry


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no delayed-ACK stalls

    def log_message(self, *args) -> None:  # the test output stays readable
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    @property
    def standin(self) -> GraphStandIn:
        return self.server.standin

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        prefer = [p.strip() for p in (self.headers.get("Prefer") or "").split(",") if p.strip()]
        self.immutable = any(p.lower() == 'idtype="immutableid"' for p in prefer)
        self.page_size = next((int(p.split("=", 1)[1]) for p in prefer
                               if p.lower().startswith("odata.maxpagesize=")), None)
        entry = {"method": method, "path": parts.path, "query": self.query, "prefer": prefer, "status": None,
                 "at": time.monotonic()}
        self.standin.log.append(entry)
        if parts.path.startswith("/_login/"):
            return self._send(*login_route(self.standin, method, parts.path, self.body), entry=entry)
        admitted = self.standin._enter()
        try:
            if not admitted:
                return self._error(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                                   entry, {"Retry-After": "1"})
            fault = self.standin._take_fault(f"{method} {parts.path}", self.body)
            if fault is not None and fault.kind == "hang":
                release = self.standin.release
                self.standin.hanging.set()
                release.wait(120)
                self.close_connection = True
                return
            if fault is not None and fault.kind == "throttle":
                extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return self._error(429, "ApplicationThrottled", "Application is over its rate limit.", entry, extra)
            if fault is not None and fault.kind == "error":
                return self._error(fault.status, fault.code, "The service is temporarily unavailable.", entry)
            if self.standin.latency:
                time.sleep(self.standin.latency)
            try:
                status, payload, headers = self._route(method, [unquote(s) for s in parts.path.split("/")[1:]])
            except GraphFault as exc:
                return self._error(exc.status, exc.code, exc.message, entry)
            self._send(status, payload, headers, entry=entry, drop=fault is not None and fault.kind == "drop")
        finally:
            self.standin._leave()

    def _route(self, method: str, seg: list[str]) -> tuple[int, object, dict]:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.standin.tokens:
            raise GraphFault(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        if len(seg) < 3 or seg[0] != "v1.0" or seg[1] != "users":
            raise GraphFault(400, "BadRequest", "Resource not found for the segment.")
        if seg[2].lower() != self.standin.mailbox.lower():
            raise GraphFault(403, "ErrorAccessDenied", "Access to OData is disabled: [RAOP] : Blocked by tenant "
                                                       "configured AppOnly AccessPolicy settings.")
        store, rest = self.standin.store, seg[3:]
        with store.lock:
            return mail_route(self, store, method, rest, self._json())

    def _json(self) -> dict:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            raise GraphFault(400, "RequestBodyRead", "Invalid JSON in the request body.") from None

    def _error(self, status: int, code: str, message: str, entry: dict, headers: dict | None = None) -> None:
        error = {"error": {"code": code, "message": message, "innerError": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4())}}}
        self._send(status, error, headers or {}, entry=entry)

    def _send(self, status: int, payload: object, headers: dict, entry: dict, drop: bool = False) -> None:
        entry["status"] = status
        if isinstance(payload, bytes):
            body, ctype = payload, headers.pop("Content-Type", "text/plain")
        elif payload is None:
            body, ctype = b"", None
        else:
            body = json.dumps(payload).encode()
            ctype = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", str(uuid.uuid4()))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if drop:
            # The request took effect; the answer is cut off halfway, as when a connection breaks mid-fetch.
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)
