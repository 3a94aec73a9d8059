"""Reply drafts and sending for the Microsoft 365 mailbox: threaded under the original, exactly once per key.

Each draft is made with createReply on the original (found by internetMessageId), so Outlook shows
it in the patient's conversation with In-Reply-To/References set by Exchange, and carries the outbox
idempotency key in a single-value extended property. Before creating anything the mailbox is searched
for that key, so a crash and replay (or a lost answer) never makes a second draft or sends twice.
"""

import html
import logging
import re
from email.utils import parseaddr

from connectors.graph_http import GraphAmbiguous, GraphHttp
from connectors.mailbox import NoticeKind, NoticeLog, OutgoingMail

log = logging.getLogger(__name__)

PROPERTY_SET = "{f173527d-30ba-4ffe-80f1-154c67422fbe}"
KEY_PROPERTY = f"String {PROPERTY_SET} Name rxinboxIdempotencyKey"
STAGE_PROPERTY = f"String {PROPERTY_SET} Name rxinboxDraftStage"
DRAFTED_CATEGORY = "rxinbox: drafted"
DELIVERY_ATTEMPTS = 3
_BODY_TAG = re.compile(r"<body[^>]*>", re.I)


def odata_string(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def reply_html(text: str) -> str:
    return '<div dir="auto">' + "<br>".join(html.escape(line) for line in text.splitlines()) + "</div>"


def splice_reply(body: dict | None, text: str) -> str:
    """The reply text above the quoted original that createReply put in the draft."""
    content = (body or {}).get("content") or ""
    if (body or {}).get("contentType", "").lower() != "html":
        content = f"<pre>{html.escape(content)}</pre>" if content else ""
    match = _BODY_TAG.search(content)
    if match:
        return content[:match.end()] + reply_html(text) + content[match.end():]
    return reply_html(text) + content


def recipient(address: str) -> dict:
    name, addr = parseaddr(address)
    return {"emailAddress": {"address": addr or address, **({"name": name} if name else {})}}


def draft_stage(message: dict) -> str | None:
    for prop in message.get("singleValueExtendedProperties") or []:
        if prop.get("id", "").lower() == STAGE_PROPERTY.lower():
            return prop.get("value")
    return None


class GraphDrafts:
    """save_draft and send of GraphMailbox; needs name, http, user and _msg/categorise from it."""

    name: str
    http: GraphHttp
    user: str
    notices: NoticeLog

    def save_draft(self, mail: OutgoingMail) -> str:
        """A reply draft in the mailbox's Drafts, threaded under the original; exactly once per idempotency key."""
        return self._deliver(mail, send=False)

    def send(self, mail: OutgoingMail) -> str:
        """Send an approved reply (through a threaded draft); a replay finds it sent and does nothing."""
        return self._deliver(mail, send=True)

    def _deliver(self, mail: OutgoingMail, send: bool) -> str:
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            try:
                return self._deliver_once(mail, send)
            except GraphAmbiguous:
                if attempt == DELIVERY_ATTEMPTS:
                    raise
                log.warning("graph mailbox %s: answer lost while saving a reply; looking before retrying", self.name)
                self.notices.record(NoticeKind.request_retried, 1, "reply: answer lost, looked up before retrying")
        raise AssertionError("unreachable")

    def _deliver_once(self, mail: OutgoingMail, send: bool) -> str:
        existing = self.find_by_key(mail.idempotency_key) if mail.idempotency_key else None
        if existing is not None and not existing.get("isDraft", True):
            return existing["id"]
        original = None
        if existing is None:
            original = self.find_original(mail.in_reply_to) if mail.in_reply_to else None
            draft = self._create_draft(mail, original)
        else:
            draft = existing
        if draft_stage(draft) != "filled":
            original = original or (self.find_original(mail.in_reply_to) if mail.in_reply_to else None)
            if original and not send:
                # Tag the original before filling: a crash in between repeats both, both idempotent.
                self.categorise(original, DRAFTED_CATEGORY)
            body = draft.get("body") or self.http.json("GET", self._msg(draft["id"]),
                                                       params={"$select": "body"})["body"]
            self.http.request("PATCH", self.http.url(self._msg(draft["id"])), json={
                "subject": mail.subject, "toRecipients": [recipient(mail.to)],
                "body": {"contentType": "html", "content": splice_reply(body, mail.body)},
                "singleValueExtendedProperties": [{"id": STAGE_PROPERTY, "value": "filled"}],
            })
        if send:
            self.http.request("POST", self.http.url(self._msg(draft["id"], "/send")))
        return draft["id"]

    def find_by_key(self, key: str) -> dict | None:
        """The draft (or sent message) carrying this idempotency key, anywhere in the mailbox."""
        params = {
            "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq {odata_string(KEY_PROPERTY)} "
                       f"and ep/value eq {odata_string(key)})",
            "$select": "id,isDraft,parentFolderId",
            "$expand": f"singleValueExtendedProperties($filter=id eq {odata_string(STAGE_PROPERTY)})",
        }
        found = self.http.json("GET", f"{self.user}/messages", params=params).get("value", [])
        return found[0] if found else None

    def find_original(self, message_id: str) -> str | None:
        """The received message with this Message-ID (not a draft quoting it)."""
        params = {"$filter": f"internetMessageId eq {odata_string(message_id)}", "$select": "id,isDraft"}
        found = self.http.json("GET", f"{self.user}/messages", params=params).get("value", [])
        return next((m["id"] for m in found if not m.get("isDraft")), None)

    def _create_draft(self, mail: OutgoingMail, original: str | None) -> dict:
        props = [{"id": STAGE_PROPERTY, "value": "created"}]
        if mail.idempotency_key:
            props.append({"id": KEY_PROPERTY, "value": mail.idempotency_key})
        if original:
            return self.http.json("POST", self._msg(original, "/createReply"),
                                  json={"message": {"singleValueExtendedProperties": props}})
        if mail.in_reply_to:
            log.warning("graph mailbox %s: the original of a reply is gone; saving the draft unthreaded", self.name)
            self.notices.record(NoticeKind.reply_unthreaded, 1, "original no longer in the mailbox")
        props[0]["value"] = "filled"
        return self.http.json("POST", f"{self.user}/messages", json={
            "subject": mail.subject, "toRecipients": [recipient(mail.to)],
            "body": {"contentType": "html", "content": reply_html(mail.body)}, "singleValueExtendedProperties": props,
        })
