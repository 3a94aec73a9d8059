"""The Graph stand-in's mailbox: messages and folders in memory, rendered as Graph JSON, with delta change tracking.

Modelled on Exchange Online as Graph shows it: every item has a REST id that changes when it moves
and an immutable id that does not (Prefer: IdType="ImmutableId"); drafts made by createReply share
the original's conversationId and thread by In-Reply-To/References; delta rounds track additions,
updates and removals (a move out shows as "@removed": {"reason": "deleted"}) by a change sequence.
"""

import base64
import html
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, make_msgid, parsedate_to_datetime

WELL_KNOWN = {"inbox": "Inbox", "drafts": "Drafts", "sentitems": "Sent Items", "deleteditems": "Deleted Items",
              "archive": "Archive", "junkemail": "Junk Email"}
DRAFT_ONLY = {"subject", "body", "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "internetMessageId",
              "from"}
WRITABLE = DRAFT_ONLY | {"isRead", "categories", "importance", "flag", "inferenceClassification",
                         "isDeliveryReceiptRequested", "isReadReceiptRequested", "singleValueExtendedProperties"}
_PARSER = BytesParser(policy=policy.default)


class GraphFault(Exception):
    """An error the stand-in answers with Graph's error JSON."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def address(raw: str) -> dict:
    name, addr = getaddresses([raw])[0] if raw else ("", "")
    return {"emailAddress": {"name": name or addr, "address": addr}}


@dataclass
class Message:
    serial: int
    immutable_id: str
    folder: str
    props: dict
    mime: bytes | None = None
    extended: dict[str, str] = field(default_factory=dict)
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    moves: int = 0
    changed: int = 0

    def rest_id(self) -> str:
        return "AAMkAGI2" + b64(f"{self.folder}|{self.serial}|{self.moves}")

    def public_id(self, immutable: bool) -> str:
        return self.immutable_id if immutable else self.rest_id()


class MailboxStore:
    """One mailbox's folders and messages; every change bumps a sequence that delta rounds compare."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.lock = threading.RLock()
        self.seq = 0
        self._serials = itertools.count(1)
        self.messages: dict[str, Message] = {}
        self.folders: dict[str, dict] = {}
        self.well_known: dict[str, str] = {}
        self.tombstones: list[tuple[int, str, str, str]] = []  # (seq, folder, immutable id, rest id)
        self.conversations: dict[str, str] = {}
        self.sent: list[Message] = []
        for key, name in WELL_KNOWN.items():
            self.well_known[key] = self.create_folder(name, None)["id"]

    def bump(self) -> int:
        self.seq += 1
        return self.seq

    def create_folder(self, name: str, parent: str | None) -> dict:
        with self.lock:
            if any(f["displayName"].lower() == name.lower() and f["parentFolderId"] == parent
                   for f in self.folders.values()):
                raise GraphFault(409, "ErrorFolderExists", "A folder with the specified name already exists.")
            folder_id = "AQMkADAwATM0" + b64(f"folder|{len(self.folders) + 1}|{name}")
            self.folders[folder_id] = {"id": folder_id, "displayName": name, "parentFolderId": parent or "root",
                                       "childFolderCount": 0, "unreadItemCount": 0, "totalItemCount": 0,
                                       "isHidden": False}
            return self.folders[folder_id]

    def folder(self, key: str) -> str:
        folder_id = self.well_known.get(key.lower(), key)
        if folder_id not in self.folders:
            raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return folder_id

    def folder_json(self, folder_id: str) -> dict:
        items = [m for m in self.messages.values() if m.folder == folder_id]
        return {**self.folders[folder_id], "totalItemCount": len(items),
                "unreadItemCount": sum(not m.props["isRead"] for m in items),
                "childFolderCount": sum(f["parentFolderId"] == folder_id for f in self.folders.values())}

    def find(self, any_id: str) -> Message:
        """By immutable id, or by REST id while the item is still where that id was issued."""
        msg = self.messages.get(any_id)
        if msg is None:
            msg = next((m for m in self.messages.values() if m.rest_id() == any_id), None)
        if msg is None:
            raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return msg

    def _new(self, folder: str, props: dict, **kwargs) -> Message:
        serial = next(self._serials)
        msg = Message(serial, "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A" + b64(f"item|{serial}"), folder, props, **kwargs)
        msg.changed = self.bump()
        props.setdefault("changeKey", b64(f"ck|{serial}|{msg.changed}"))
        self.messages[msg.immutable_id] = msg
        return msg

    def deliver(self, raw: bytes, folder: str = "inbox") -> Message:
        """A message arriving from the Internet, as Exchange would store it."""
        parsed = _PARSER.parsebytes(raw)
        mid = str(parsed.get("Message-ID", "")).strip() or make_msgid(domain="standin.example")
        reply_to = str(parsed.get("In-Reply-To", "")).strip() or None
        refs = str(parsed.get("References", "")).split()
        with self.lock:
            conversation = self.conversations.get(reply_to or "") or "AAQkAGI2" + b64(f"conv|{mid}")
            self.conversations[mid] = conversation
            try:
                received = parsedate_to_datetime(str(parsed["Date"]))
            except (TypeError, ValueError):
                received = datetime.now(timezone.utc)
            body = parsed.get_body(("plain", "html"))
            content = body.get_content() if body is not None else ""
            props = {
                "receivedDateTime": iso(received), "sentDateTime": iso(received),
                "createdDateTime": iso(received), "lastModifiedDateTime": iso(received),
                "hasAttachments": any(True for _ in parsed.iter_attachments()),
                "internetMessageId": mid, "subject": str(parsed.get("Subject", "")),
                "bodyPreview": " ".join(content.split())[:255], "importance": "normal",
                "conversationId": conversation, "isDeliveryReceiptRequested": False,
                "isReadReceiptRequested": False, "isRead": False, "isDraft": False,
                "inferenceClassification": "focused", "categories": [], "flag": {"flagStatus": "notFlagged"},
                "body": {"contentType": "html" if body is not None and body.get_content_subtype() == "html" else "text",
                         "content": content},
                "sender": address(str(parsed.get("From", ""))), "from": address(str(parsed.get("From", ""))),
                "toRecipients": [address(a) for a in str(parsed.get("To", "")).split(",") if a.strip()],
                "ccRecipients": [], "bccRecipients": [],
                "replyTo": [address(str(parsed["Reply-To"]))] if parsed.get("Reply-To") else [],
            }
            return self._new(self.folder(folder), props, mime=raw, in_reply_to=reply_to, references=refs)

    def create_draft(self, fields: dict) -> Message:
        with self.lock:
            now = iso(datetime.now(timezone.utc))
            mid = make_msgid(domain="standin.prod.outlook.example")
            props = {"createdDateTime": now, "lastModifiedDateTime": now, "receivedDateTime": now,
                     "sentDateTime": None, "hasAttachments": False, "internetMessageId": mid, "subject": "",
                     "bodyPreview": "", "importance": "normal", "conversationId": "AAQkAGI2" + b64(f"conv|{mid}"),
                     "isDeliveryReceiptRequested": False, "isReadReceiptRequested": False, "isRead": True,
                     "isDraft": True, "inferenceClassification": "focused", "categories": [],
                     "flag": {"flagStatus": "notFlagged"}, "body": {"contentType": "text", "content": ""},
                     "sender": address(self.owner), "from": address(self.owner), "toRecipients": [],
                     "ccRecipients": [], "bccRecipients": [], "replyTo": []}
            msg = self._new(self.well_known["drafts"], props)
            self.update(msg, fields)
            return msg

    def create_reply(self, original: Message, fields: dict) -> Message:
        """createReply: a draft in Drafts, in the original's conversation, quoting it below an empty line."""
        if "comment" in fields and "body" in fields.get("message", {}):
            raise GraphFault(400, "ErrorInvalidArgument", "Specify either a comment or the message body, not both.")
        with self.lock:
            src = original.props
            sender = src["replyTo"] or [src["from"]]
            quote = (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
                     f'<body><div dir="ltr">{html.escape(fields.get("comment", "")) or "<br>"}</div>'
                     f'<hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr">'
                     f'<b>From:</b> {html.escape(src["from"]["emailAddress"]["address"])}<br><b>Sent:</b> '
                     f'{src["sentDateTime"]}<br><b>Subject:</b> {html.escape(src["subject"])}</div>'
                     f'<div>{html.escape(src["body"]["content"]).replace(chr(10), "<br>")}</div></body></html>')
            msg = self.create_draft({"subject": "RE: " + src["subject"], "toRecipients": sender,
                                     "body": {"contentType": "html", "content": quote}})
            msg.props["conversationId"] = src["conversationId"]
            msg.in_reply_to = src["internetMessageId"]
            msg.references = [*original.references, src["internetMessageId"]]
            self.update(msg, fields.get("message", {}))
            return msg

    def update(self, msg: Message, fields: dict) -> None:
        unknown = set(fields) - WRITABLE
        if unknown:
            raise GraphFault(400, "RequestBodyRead", f"The property '{sorted(unknown)[0]}' does not exist on type "
                                                     "'microsoft.graph.message' or is not writable.")
        if not msg.props["isDraft"] and set(fields) & DRAFT_ONLY:
            raise GraphFault(400, "ErrorInvalidPropertyUpdateSentMessage",
                             "Update operation is invalid for property of a sent message.")
        with self.lock:
            for key, value in fields.items():
                if key == "singleValueExtendedProperties":
                    msg.extended.update({p["id"]: p["value"] for p in value})
                else:
                    msg.props[key] = value
            msg.props["lastModifiedDateTime"] = iso(datetime.now(timezone.utc))
            msg.changed = self.bump()
            msg.props["changeKey"] = b64(f"ck|{msg.serial}|{msg.changed}")

    def move(self, msg: Message, destination: str) -> None:
        with self.lock:
            target = self.folder(destination)
            if target == msg.folder:
                return
            self.tombstones.append((self.bump(), msg.folder, msg.immutable_id, msg.rest_id()))
            msg.folder, msg.moves = target, msg.moves + 1
            msg.changed = self.bump()

    def delete(self, msg: Message) -> None:
        with self.lock:
            self.tombstones.append((self.bump(), msg.folder, msg.immutable_id, msg.rest_id()))
            del self.messages[msg.immutable_id]

    def send(self, msg: Message) -> None:
        if not msg.props["isDraft"]:
            raise GraphFault(400, "ErrorInvalidOperation", "Only draft messages can be sent.")
        with self.lock:
            msg.props.update(isDraft=False, sentDateTime=iso(datetime.now(timezone.utc)))
            self.move(msg, "sentitems")
            self.sent.append(msg)

    def to_json(self, msg: Message, immutable: bool, select: list[str] | None = None,
                expand_props: list[str] | None = None) -> dict:
        out = {"@odata.type": "#microsoft.graph.message", "@odata.etag": f'W/"{msg.props["changeKey"]}"',
               "id": msg.public_id(immutable)}
        props = {**msg.props, "parentFolderId": msg.folder}
        out.update({k: v for k, v in props.items() if select is None or k in select})
        if expand_props is not None:
            found = [{"id": pid, "value": value} for pid, value in msg.extended.items()
                     if any(pid.lower() == want.lower() for want in expand_props)]
            if found:
                out["singleValueExtendedProperties"] = found
        return out

    def mime(self, msg: Message) -> bytes:
        """$value: the stored MIME of received mail; drafts and sent items rendered with their threading headers."""
        if msg.mime is not None:
            return msg.mime
        out = EmailMessage()
        out["From"] = msg.props["from"]["emailAddress"]["address"]
        out["To"] = ", ".join(r["emailAddress"]["address"] for r in msg.props["toRecipients"])
        out["Subject"] = msg.props["subject"]
        out["Date"] = format_datetime(datetime.now(timezone.utc))
        out["Message-ID"] = msg.props["internetMessageId"]
        if msg.in_reply_to:
            out["In-Reply-To"] = msg.in_reply_to
            out["References"] = " ".join(msg.references)
        body = msg.props["body"]
        out.set_content(body["content"], subtype="html" if body["contentType"].lower() == "html" else "plain")
        return out.as_bytes(policy=policy.SMTP)

    def changes(self, folder: str, since: int | None) -> list[tuple[str, str, str | None]]:
        """A delta round's entries at its start: (kind, immutable id, REST id of a removal) oldest change first."""
        with self.lock:
            present = [m for m in self.messages.values() if m.folder == folder and (since is None or m.changed > since)]
            present.sort(key=lambda m: m.changed)
            entries: list[tuple[str, str, str | None]] = [("item", m.immutable_id, None) for m in present]
            if since is not None:
                here = {m.immutable_id for m in self.messages.values() if m.folder == folder}
                gone = {imm: rest for seq, f, imm, rest in self.tombstones if f == folder and seq > since}
                entries += [("removed", imm, rest) for imm, rest in gone.items() if imm not in here]
            return entries
