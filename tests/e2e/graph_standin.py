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
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import jwt
from cryptography import x509

from tests.e2e.graph_standin_store import GraphFault, MailboxStore

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
_LITERAL = r"'((?:[^']|'')*)'"
FILTER_MESSAGE_ID = re.compile(rf"^\s*internetMessageId\s+eq\s+{_LITERAL}\s*$", re.I)
FILTER_EXTENDED = re.compile(rf"^\s*singleValueExtendedProperties/any\((\w+):\s*\1/id\s+eq\s+{_LITERAL}\s+and\s+"
                             rf"\1/value\s+eq\s+{_LITERAL}\)\s*$", re.I)
FILTER_NAME = re.compile(rf"^\s*displayName\s+eq\s+{_LITERAL}\s*$", re.I)
EXPAND_EXTENDED = re.compile(rf"^singleValueExtendedProperties\(\$filter=id\s+eq\s+{_LITERAL}\)$", re.I)


def unliteral(text: str) -> str:
    return text.replace("''", "'")


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
        threading.Thread(target=self._server.serve_forever, name="graph-standin", daemon=True).start()
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
        self.page_size = next((int(p.split("=", 1)[1]) for p in prefer if p.lower().startswith("odata.maxpagesize=")), None)
        entry = {"method": method, "path": parts.path, "query": self.query, "prefer": prefer, "status": None,
                 "at": time.monotonic()}
        self.standin.log.append(entry)
        if parts.path.startswith("/_login/"):
            return self._send(*_login(self.standin, method, parts.path, self.body), entry=entry)
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
            return _mail_route(self, store, method, rest, self._json())

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


def _listing(handler: _Handler, items: list[dict], path: str) -> dict:
    top, skip = min(int(handler.query.get("$top", 10)), 1000), int(handler.query.get("$skip", 0))
    page = {"value": items[skip:skip + top]}
    if skip + top < len(items):
        query = {**handler.query, "$skip": str(skip + top)}
        page["@odata.nextLink"] = f"{handler.standin.base_url}{path.lstrip('/')}?{urlencode(query)}"
    return page


def _message_filter(expr: str | None):
    if not expr:
        return lambda msg: True
    if match := FILTER_MESSAGE_ID.match(expr):
        wanted = unliteral(match.group(1))
        return lambda msg: msg.props.get("internetMessageId") == wanted
    if match := FILTER_EXTENDED.match(expr):
        prop, value = unliteral(match.group(2)), unliteral(match.group(3)).lower()
        return lambda msg: any(pid == prop and v.lower() == value for pid, v in msg.extended.items())
    raise GraphFault(400, "BadRequest", "Invalid filter clause")


def _render_args(handler: _Handler) -> dict:
    select = handler.query.get("$select")
    expand = handler.query.get("$expand")
    expand_props = None
    if expand:
        match = EXPAND_EXTENDED.match(expand)
        if not match:
            raise GraphFault(400, "BadRequest", "Parsing OData Select and Expand failed.")
        expand_props = [unliteral(match.group(1))]
    return {"immutable": handler.immutable, "select": select.split(",") if select else None,
            "expand_props": expand_props}


def _mail_route(handler: _Handler, store: MailboxStore, method: str, rest: list[str], body: dict):
    user_path = f"/v1.0/users/{quote(store.owner, safe='@')}"
    if rest[:1] == ["mailFolders"]:
        parent = "root" if len(rest) == 1 else store.folder(rest[1])
        if len(rest) == 1 or rest[2:] == ["childFolders"]:
            if method == "POST":
                return 201, store.create_folder(body.get("displayName", ""), None if parent == "root" else parent), {}
            match = FILTER_NAME.match(handler.query.get("$filter", "")) if handler.query.get("$filter") else None
            if handler.query.get("$filter") and not match:
                raise GraphFault(400, "BadRequest", "Invalid filter clause")
            folders = [store.folder_json(f) for f, data in store.folders.items()
                       if data["parentFolderId"] == parent
                       and (match is None or data["displayName"].lower() == unliteral(match.group(1)).lower())]
            return 200, _listing(handler, folders, handler.path.split("?")[0]), {}
        if len(rest) == 2 and method == "GET":
            return 200, store.folder_json(parent), {}
        if rest[2:] == ["messages", "delta"] and method == "GET":
            return _delta(handler, store, parent, f"{user_path}/mailFolders/{quote(rest[1], safe='')}/messages/delta")
        if rest[2:] == ["messages"]:
            rest, scope = ["messages"], parent
        else:
            raise GraphFault(400, "BadRequest", "Resource not found for the segment.")
    else:
        scope = None
    if rest == ["messages"]:
        if method == "POST":
            return 201, store.to_json(store.create_draft(body), handler.immutable), {}
        keep = _message_filter(handler.query.get("$filter"))
        found = sorted((m for m in store.messages.values() if (scope is None or m.folder == scope) and keep(m)),
                       key=lambda m: m.props.get("receivedDateTime") or "", reverse=True)
        args = _render_args(handler)
        return 200, _listing(handler, [store.to_json(m, **args) for m in found], handler.path.split("?")[0]), {}
    if len(rest) < 2 or rest[0] != "messages":
        raise GraphFault(400, "BadRequest", "Resource not found for the segment.")
    msg, action = store.find(rest[1]), rest[2:]
    if not action and method == "GET":
        return 200, store.to_json(msg, **_render_args(handler)), {}
    if not action and method == "PATCH":
        store.update(msg, body)
        return 200, store.to_json(msg, handler.immutable), {}
    if not action and method == "DELETE":
        store.delete(msg)
        return 204, None, {}
    if action == ["$value"] and method == "GET":
        return 200, store.mime(msg), {"Content-Type": "text/plain"}
    if action == ["move"] and method == "POST":
        if not body.get("destinationId"):
            raise GraphFault(400, "ErrorInvalidIdMalformed", "Id is malformed.")
        store.move(msg, body["destinationId"])
        return 201, store.to_json(msg, handler.immutable), {}
    if action == ["createReply"] and method == "POST":
        return 201, store.to_json(store.create_reply(msg, body), handler.immutable), {}
    if action == ["send"] and method == "POST":
        store.send(msg)
        return 202, None, {}
    raise GraphFault(405, "ErrorInvalidRequest", "The OData request is not supported.")


def _delta(handler: _Handler, store: MailboxStore, folder: str, path: str):
    standin, base = handler.standin, handler.standin.base_url.rstrip("/") + path
    if "$skiptoken" in handler.query:
        round_ = standin._delta_entry(handler.query["$skiptoken"])
    else:
        since, select = None, handler.query.get("$select")
        if "$deltatoken" in handler.query:
            saved = standin._delta_entry(handler.query["$deltatoken"])
            since, select = saved["since"], saved["select"]
        round_ = {"entries": store.changes(folder, since), "offset": 0, "upto": store.seq, "select": select}
    size = min(handler.page_size or 10, 1000)
    chunk = round_["entries"][round_["offset"]:round_["offset"] + size]
    select = round_["select"].split(",") if round_["select"] else None
    value = []
    for kind, imm, rest_id in chunk:
        msg = store.messages.get(imm)
        if kind == "item" and msg is not None and msg.folder == folder:
            value.append(store.to_json(msg, handler.immutable, select))
        else:
            value.append({"@odata.type": "#microsoft.graph.message", "@removed": {"reason": "deleted"},
                          "id": imm if handler.immutable else (rest_id or (msg.rest_id() if msg else imm))})
    page = {"@odata.context": f"{standin.base_url}v1.0/$metadata#Collection(message)", "value": value}
    offset = round_["offset"] + len(chunk)
    if offset < len(round_["entries"]):
        page["@odata.nextLink"] = f"{base}?$skiptoken={standin._new_token({**round_, 'offset': offset})}"
    else:
        page["@odata.deltaLink"] = f"{base}?$deltatoken={standin._new_token({'since': round_['upto'], 'select': round_['select']})}"
    applied = [f"odata.maxpagesize={size}"] + (['IdType="ImmutableId"'] if handler.immutable else [])
    return 200, page, {"Preference-Applied": ", ".join(applied)}


def _login(standin: GraphStandIn, method: str, path: str, body: bytes) -> tuple[int, dict, dict]:
    """Entra ID's OpenID configuration and client-credentials token endpoint, as MSAL calls them."""
    seg = path.split("/")[2:]
    authority = f"https://login.microsoftonline.com/{seg[0]}"
    if seg == ["common", "discovery", "instance"] and method == "GET":
        # Instance discovery: MSAL asks which hosts are aliases of login.microsoftonline.com for its token cache.
        return 200, {"tenant_discovery_endpoint": f"{authority}/v2.0/.well-known/openid-configuration",
                     "api-version": "1.1", "metadata": [{
                         "preferred_network": "login.microsoftonline.com", "preferred_cache": "login.windows.net",
                         "aliases": ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com",
                                     "sts.windows.net"]}]}, {}
    if seg[0] != standin.tenant:
        return 400, {"error": "invalid_tenant", "error_description": f"AADSTS90002: Tenant '{seg[0]}' not found."}, {}
    if seg[1:] == ["v2.0", ".well-known", "openid-configuration"] and method == "GET":
        return 200, {"token_endpoint": f"{authority}/oauth2/v2.0/token", "issuer": f"{authority}/v2.0",
                     "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
                     "device_authorization_endpoint": f"{authority}/oauth2/v2.0/devicecode"}, {}
    if seg[1:] != ["oauth2", "v2.0", "token"] or method != "POST":
        return 404, {"error": "not_found"}, {}
    standin.token_requests += 1
    form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
    if form.get("client_id") != standin.client_id:
        return 400, {"error": "unauthorized_client", "error_description": "AADSTS700016: Application with identifier "
                     f"'{form.get('client_id')}' was not found in the directory."}, {}
    if "client_secret" in form:
        if form["client_secret"] != standin.client_secret:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret "
                         "provided."}, {}
    elif "client_assertion" in form and standin.certificate is not None:
        try:
            jwt.decode(form["client_assertion"], standin.certificate.public_key(), algorithms=["RS256", "PS256"],
                       options={"verify_aud": False})
        except jwt.PyJWTError:
            return 401, {"error": "invalid_client", "error_description": "AADSTS700027: Client assertion contains an "
                         "invalid signature."}, {}
    else:
        return 401, {"error": "invalid_client", "error_description": "AADSTS7000218: The request body must contain "
                     "client_assertion or client_secret."}, {}
    if form.get("scope") != GRAPH_SCOPE:
        return 400, {"error": "invalid_scope", "error_description": "AADSTS1002012: The provided value for scope "
                     f"{form.get('scope')} is not valid."}, {}
    token = secrets.token_hex(16)
    standin.tokens.add(token)
    return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}, {}
