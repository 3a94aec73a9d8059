"""Any IMAP mailbox (Gmail, Exchange, Dovecot, ...) through imaplib; replies are sent with connectors.smtp_sender.

Refs are "UIDVALIDITY:UID": stable while the folder lives. When a server resets UIDVALIDITY the old
refs stop matching, the messages are listed again under new refs, and the store's message key
(Message-ID + content fingerprint) recognises them, so nothing is processed twice.
"""

import atexit
import imaplib
import logging
import os
import ssl
import threading
from email.utils import make_msgid
from typing import Callable, Iterator, Literal

from prefect.blocks.system import Secret

from connectors.imap_protocol import fetched_bodies, group_refs, special_folder, uid_set
from connectors.imap_session import ImapLoginError, ImapSession, ok
from connectors.mailbox import MailboxError, MailboxNotice, NoticeKind, NoticeLog, OutgoingMail
from connectors.mailbox_config import ImapMailboxConfig
from connectors.smtp_sender import SmtpSender, compose
from data_contracts.models import InboundMessage
from rxinbox import clock
from rxinbox.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["ImapLoginError", "ImapMailbox", "open_from_config", "PROCESSED_KEYWORD"]

PROCESSED_KEYWORD = "$rxinbox-processed"
FETCH_CHUNK = 50
MAX_MESSAGE_BYTES = 50 * 1024 * 1024


class ImapMailbox:
    """One IMAP folder swept by rxinbox. Logs name the mailbox, folders and counts, never subjects or addresses."""

    def __init__(self, name: str, host: str, username: str, password: Callable[[], str], *, port: int | None = None,
                 security: Literal["tls", "starttls", "plain"] = "tls", allow_plaintext_auth: bool = False,
                 folder: str = "INBOX", drafts_folder: str = "Drafts", processed_folder: str | None = None,
                 sent_folder: str | None = None, from_address: str | None = None, smtp: SmtpSender | None = None,
                 ssl_context: ssl.SSLContext | None = None, timeout: float = 60.0) -> None:
        self.notices = NoticeLog()
        self.session = ImapSession(host, username, password, port=port, security=security,
                                   allow_plaintext_auth=allow_plaintext_auth, ssl_context=ssl_context, timeout=timeout,
                                   notices=self.notices)
        self.name, self.folder, self.drafts_folder = name, folder, drafts_folder
        self.processed_folder, self.sent_folder = processed_folder, sent_folder
        self.from_address, self.smtp = from_address, smtp
        self._keywords = True

    def close(self) -> None:
        self.session.close()

    def drain_notices(self) -> list[MailboxNotice]:
        """Faults handled since the last drain (vanished mail, UIDVALIDITY changes, reconnects), for the audit trail."""
        return self.notices.drain()

    def _select(self, conn: imaplib.IMAP4, readonly: bool = False) -> int:
        """Select the swept folder; a read-write select also tells whether it keeps custom keywords."""
        validity, flags = self.session.select(conn, self.folder, readonly)
        # EXAMINE reports no permanent flags at all, so only a read-write select can tell.
        if not readonly and flags is not None:
            keywords = b"\\*" in flags or PROCESSED_KEYWORD.encode() in flags
            if self._keywords and not keywords:
                log.warning("IMAP mailbox %s keeps no custom keywords: every sweep lists the whole folder; "
                            "set processed_folder", self.name)
            self._keywords = keywords
        return validity

    def list_refs(self) -> list[str]:
        def op(conn: imaplib.IMAP4) -> list[str]:
            validity = self._select(conn, readonly=True)
            # Not UNSEEN: staff may have opened a mail in their client before rxinbox got to it.
            criteria = ["UNDELETED", "UNKEYWORD", PROCESSED_KEYWORD] if self._keywords else ["UNDELETED"]
            data = ok(conn.uid("SEARCH", *criteria), "UID SEARCH")
            return [f"{validity}:{uid}" for uid in sorted(int(u) for u in (data[0] or b"").split())]

        refs = self.session.run("list", op)
        log.info("IMAP mailbox %s: %d message(s) waiting in %s", self.name, len(refs), self.folder)
        return refs

    def fetch(self, refs: list[str]) -> Iterator[InboundMessage]:
        for validity, uids in group_refs(refs).items():
            for start in range(0, len(uids), FETCH_CHUNK):
                chunk = uids[start:start + FETCH_CHUNK]
                current, bodies = self.session.run("fetch", lambda conn, chunk=chunk: self._fetch_chunk(conn, chunk))
                if current != validity:
                    log.warning("IMAP mailbox %s: %d ref(s) from an older UIDVALIDITY skipped; they are listed "
                                "again under new refs", self.name, len(uids) - start)
                    self.notices.record(NoticeKind.uidvalidity_changed, len(uids) - start,
                                        f"fetch skipped old refs in {self.folder}")
                    break
                missing = sum(1 for uid in chunk if uid not in bodies)
                if missing:
                    log.warning("IMAP mailbox %s: %d message(s) vanished between listing and fetching; skipped",
                                self.name, missing)
                    self.notices.record(NoticeKind.vanished_before_fetch, missing, f"folder {self.folder}")
                for uid in chunk:
                    if uid in bodies:
                        yield InboundMessage(mailbox=self.name, ref=f"{validity}:{uid}", raw=bodies[uid],
                                             folder=self.folder)

    def _fetch_chunk(self, conn: imaplib.IMAP4, uids: list[int]) -> tuple[int, dict[int, bytes]]:
        validity = self._select(conn, readonly=True)
        # PEEK leaves \Seen alone; the partial range truncates a giant mail so it is quarantined, not lost.
        query = f"(UID BODY.PEEK[]<0.{MAX_MESSAGE_BYTES + 1}>)"
        bodies = fetched_bodies(ok(conn.uid("FETCH", uid_set(uids), query), "UID FETCH"))
        truncated = sum(1 for raw in bodies.values() if len(raw) > MAX_MESSAGE_BYTES)
        if truncated:
            log.warning("IMAP mailbox %s: a message larger than %d bytes was truncated", self.name, MAX_MESSAGE_BYTES)
            self.notices.record(NoticeKind.message_truncated, truncated, f"larger than {MAX_MESSAGE_BYTES} bytes")
        return validity, bodies

    def mark_processed(self, refs: list[str]) -> None:
        if not refs:
            return

        def op(conn: imaplib.IMAP4) -> int:
            validity = self._select(conn)
            uids = group_refs(refs).get(validity, [])
            if uids:
                flags = f"(\\Seen {PROCESSED_KEYWORD})" if self._keywords else "(\\Seen)"
                # Flag first: a crash before the move leaves the mail flagged, and the sweep re-marks it.
                ok(conn.uid("STORE", uid_set(uids), "+FLAGS.SILENT", flags), "UID STORE")
                if self.processed_folder:
                    self.session.move(conn, uids, self.processed_folder)
            return len(uids)

        marked = self.session.run("mark", op)
        if marked < len(refs):
            log.warning("IMAP mailbox %s: %d ref(s) from an older UIDVALIDITY not marked",
                        self.name, len(refs) - marked)
            self.notices.record(NoticeKind.uidvalidity_changed, len(refs) - marked,
                                f"mark skipped old refs in {self.folder}")

    def move(self, ref: str, folder: str) -> None:
        def op(conn: imaplib.IMAP4) -> None:
            uids = group_refs([ref]).get(self._select(conn), [])
            if uids:
                self.session.move(conn, uids, folder)

        self.session.run("move", op)

    def message_id_for(self, mail: OutgoingMail) -> str:
        """A Message-ID derived from the outbox key, so a retry finds what an interrupted call stored."""
        domain = (self.from_address or mail.sender).rpartition("@")[2] or "rxinbox.invalid"
        return f"<{mail.idempotency_key}@{domain}>" if mail.idempotency_key else make_msgid(domain=domain)

    def save_draft(self, mail: OutgoingMail) -> str:
        message_id = self.message_id_for(mail)
        raw = bytes(compose(mail, message_id, self.from_address))
        ref, stored = self.session.run("save draft", lambda conn: self.session.append_once(
            conn, self.drafts_folder, "(\\Draft \\Seen)", message_id, raw, clock.now()))
        log.info("IMAP mailbox %s: draft %s in %s", self.name, "stored" if stored else "already", self.drafts_folder)
        return ref

    def _sent(self, conn: imaplib.IMAP4) -> str:
        if self.sent_folder is None:
            self.sent_folder = special_folder(conn, "\\Sent") or "Sent"
        return self.sent_folder

    def send(self, mail: OutgoingMail) -> str:
        """Send over SMTP and keep a copy in Sent; a copy already there means an earlier attempt sent it."""
        if self.smtp is None:
            raise MailboxError(f"mailbox {self.name} has no smtp_host configured; it can save drafts but not send")
        message_id = self.message_id_for(mail)
        msg = compose(mail, message_id, self.from_address)
        raw = bytes(msg)

        def already_sent(conn: imaplib.IMAP4) -> bool:
            self.session.ensure_folder(conn, self._sent(conn))
            return self.session.find(conn, self._sent(conn), message_id) is not None

        if self.session.run("check sent", already_sent):
            log.info("IMAP mailbox %s: reply already in %s; not sent again", self.name, self.sent_folder)
            return message_id
        self.smtp.send(msg)
        try:
            self.session.run("save sent copy", lambda conn: self.session.append_once(
                conn, self._sent(conn), "(\\Seen)", message_id, raw, clock.now()))
        except MailboxError:
            # Raising would make the outbox retry and send the reply a second time.
            log.exception("IMAP mailbox %s: reply sent but its copy could not be stored in Sent", self.name)
            self.notices.record(NoticeKind.sent_copy_missing, 1, f"folder {self.sent_folder}")
        return message_id


def password_source(config: ImapMailboxConfig) -> Callable[[], str]:
    """Reads the password when (re)connecting, so a rotated secret is picked up without a restart."""
    def password() -> str:
        if config.password_env:
            value = os.environ.get(config.password_env)
            if value is None:
                raise ImapLoginError(f"environment variable {config.password_env} (password of mailbox "
                                     f"{config.name}) is not set")
            return value
        if config.password_secret_block:
            return Secret.load(config.password_secret_block).get()
        raise ImapLoginError(f"mailbox {config.name}: set password_env or password_secret_block in mailboxes.yaml")

    return password


_OPEN: dict[tuple, ImapMailbox] = {}
_OPEN_LOCK = threading.Lock()


def open_from_config(config: ImapMailboxConfig, settings: Settings) -> ImapMailbox:
    """The process's mailbox for config: one connection reused by every task of a sweep."""
    from_address = config.from_address or settings.pharmacy_email
    key = (config, from_address, os.getpid())
    with _OPEN_LOCK:
        if key not in _OPEN:
            password = password_source(config)
            smtp = None
            if config.smtp_host:
                smtp = SmtpSender(config.smtp_host, config.smtp_port, config.smtp_security, config.username, password,
                                  config.allow_plaintext_auth)
            _OPEN[key] = ImapMailbox(
                config.name, config.host, config.username, password, port=config.port, security=config.security,
                allow_plaintext_auth=config.allow_plaintext_auth, folder=config.folder,
                drafts_folder=config.drafts_folder, processed_folder=config.processed_folder,
                from_address=from_address, smtp=smtp,
            )
        return _OPEN[key]


@atexit.register
def _close_all() -> None:
    for mailbox in list(_OPEN.values()):
        mailbox.close()
