"""The Graph stand-in's request handlers: mail folders, messages, delta rounds and the Entra ID sign-in endpoints.

Each handler returns (status, payload, headers) or raises GraphFault; graph_standin.py does the HTTP.
"""

import re
import secrets
from urllib.parse import parse_qs, quote, urlencode

import jwt

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



def _listing(handler, items: list[dict], path: str) -> dict:
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


def _render_args(handler) -> dict:
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


def mail_route(handler, store: MailboxStore, method: str, rest: list[str], body: dict):
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


def _delta(handler, store: MailboxStore, folder: str, path: str):
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
        token = standin._new_token({"since": round_["upto"], "select": round_["select"]})
        page["@odata.deltaLink"] = f"{base}?$deltatoken={token}"
    applied = [f"odata.maxpagesize={size}"] + (['IdType="ImmutableId"'] if handler.immutable else [])
    return 200, page, {"Preference-Applied": ", ".join(applied)}


def login_route(standin, method: str, path: str, body: bytes) -> tuple[int, dict, dict]:
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
