"""One IMAP connection that refuses unencrypted logins, reconnects after a drop and retries whole operations."""

import imaplib
import logging
import re
import ssl
import threading
import time
from datetime import datetime
from typing import Callable, Literal, TypeVar

from connectors.imap_protocol import folder_arg, quoted, uid_set
from connectors.mailbox import MailboxError, NoticeKind, NoticeLog

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_DELAYS = (0.5, 2.0)
DEFAULT_PORTS = {"tls": 993, "starttls": 143, "plain": 143}
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


class ImapLoginError(MailboxError):
    """The server rejected the credentials (or none are configured); retrying cannot help."""


def ok(result: tuple[str, list], what: str) -> list:
    """The data of an OK response; a NO or BAD becomes imaplib's error, which run() reports."""
    typ, data = result
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{what}: {typ} {data[-1] if data else ''}")
    return data


class ImapSession:
    """Connects lazily; every run() gets a live, logged-in connection, under a lock (imaplib is not thread-safe)."""

    def __init__(self, host: str, username: str, password: Callable[[], str], *, port: int | None = None,
                 security: Literal["tls", "starttls", "plain"] = "tls", allow_plaintext_auth: bool = False,
                 ssl_context: ssl.SSLContext | None = None, timeout: float = 60.0,
                 notices: NoticeLog | None = None) -> None:
        if security == "plain" and not allow_plaintext_auth:
            raise MailboxError(f"refusing plaintext IMAP to {host}: use tls or starttls, or set allow_plaintext_auth "
                               "(only for a local test server)")
        self.host, self.username, self._password = host, username, password
        self.port = port or DEFAULT_PORTS[security]
        self.security, self.allow_plaintext_auth = security, allow_plaintext_auth
        self.ssl_context, self.timeout = ssl_context, timeout
        self.capabilities: set[str] = set()
        self._conn: imaplib.IMAP4 | None = None
        self._folders: set[str] = set()
        self._lock = threading.RLock()
        self.notices = notices if notices is not None else NoticeLog()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _connect(self) -> imaplib.IMAP4:
        context = self.ssl_context or ssl.create_default_context()
        if self.security == "tls":
            conn = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=self.timeout)
        else:
            conn = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                if "STARTTLS" not in conn.capabilities:
                    raise MailboxError(f"IMAP server {self.address} does not offer STARTTLS; "
                                       "refusing to log in unencrypted")
                conn.starttls(context)
            self._login(conn)
            # The capabilities after login (MOVE, UIDPLUS) differ from the greeting's.
            caps = ok(conn.capability(), "CAPABILITY")
            self.capabilities = set(caps[0].decode().upper().split()) if caps and caps[0] else set()
        except BaseException:
            conn.shutdown()
            raise
        log.info("IMAP connected to %s (%s)", self.address, self.security)
        return conn

    def _login(self, conn: imaplib.IMAP4) -> None:
        if "LOGINDISABLED" in conn.capabilities:
            raise ImapLoginError(f"IMAP server {self.address} disables LOGIN on this connection")
        password = self._password()
        try:
            if password.isascii():
                conn.login(self.username, password)
            else:  # LOGIN is ASCII-only; SASL PLAIN carries UTF-8
                conn.authenticate("PLAIN", lambda _: f"\0{self.username}\0{password}".encode())
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error:
            raise ImapLoginError(f"IMAP login failed for user {self.username} on {self.address}") from None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._folders.clear()
        if conn is not None:
            try:
                conn.shutdown()
            except OSError:
                pass

    def close(self) -> None:
        """Log out politely; the next run() reconnects."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.logout()
                except (imaplib.IMAP4.error, OSError):
                    pass
            self._drop()

    def run(self, what: str, op: Callable[[imaplib.IMAP4], T]) -> T:
        """Run op on a live connection; after a dropped connection, reconnect with backoff and run op again whole."""
        with self._lock:
            lost: list[str] = []
            for attempt in range(len(RETRY_DELAYS) + 1):
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                    result = op(self._conn)
                    if lost:
                        # Noticed only once the operation went through: a final failure is the flow's to report.
                        self.notices.record(NoticeKind.reconnected, len(lost), f"{what} after {', '.join(lost)}")
                    return result
                except ssl.SSLCertVerificationError as exc:
                    self._drop()
                    raise MailboxError(f"TLS certificate of IMAP server {self.address} not trusted: "
                                       f"{exc.verify_message}") from exc
                except (imaplib.IMAP4.abort, OSError) as exc:  # also ssl.SSLError, timeouts, refused connections
                    self._drop()
                    if attempt == len(RETRY_DELAYS):
                        raise MailboxError(f"IMAP {what} on {self.address} failed after {attempt + 1} attempts: "
                                           f"{type(exc).__name__}: {exc}") from exc
                    log.warning("IMAP connection to %s lost during %s (%s); reconnecting in %.1f s",
                                self.address, what, type(exc).__name__, RETRY_DELAYS[attempt])
                    lost.append(type(exc).__name__)
                    time.sleep(RETRY_DELAYS[attempt])
                except imaplib.IMAP4.error as exc:
                    self._drop()
                    raise MailboxError(f"IMAP {what} on {self.address} failed: {exc}") from exc
            raise AssertionError("unreachable")

    @staticmethod
    def select(conn: imaplib.IMAP4, folder: str, readonly: bool = False) -> tuple[int, bytes | None]:
        """Select folder; returns its UIDVALIDITY and PERMANENTFLAGS (None when the server sent none)."""
        ok(conn.select(folder_arg(folder), readonly=readonly), f"SELECT {folder}")
        validity = int(conn.response("UIDVALIDITY")[1][0])
        return validity, conn.response("PERMANENTFLAGS")[1][0]

    def ensure_folder(self, conn: imaplib.IMAP4, folder: str) -> None:
        if folder in self._folders:
            return
        _, listed = conn.list('""', folder_arg(folder))
        if not any(isinstance(line, bytes) for line in listed):
            ok(conn.create(folder_arg(folder)), f"CREATE {folder}")
            log.info("created IMAP folder %s on %s", folder, self.address)
        self._folders.add(folder)

    def find(self, conn: imaplib.IMAP4, folder: str, message_id: str) -> str | None:
        """The ref of a message in folder with this Message-ID, if there is one."""
        validity, _ = self.select(conn, folder, readonly=True)
        data = ok(conn.uid("SEARCH", "HEADER", "Message-ID", quoted(message_id)), "UID SEARCH")
        uids = (data[0] or b"").split()
        return f"{validity}:{int(uids[0])}" if uids else None

    def append_once(self, conn: imaplib.IMAP4, folder: str, flags: str, message_id: str, raw: bytes,
                    when: datetime) -> tuple[str, bool]:
        """APPEND unless a message with this Message-ID is there already (an earlier attempt got through).

        Returns the message's ref and whether it was appended now; retried whole by run(), so a
        connection lost after the server stored the message finds it instead of storing it twice.
        """
        self.ensure_folder(conn, folder)
        existing = self.find(conn, folder, message_id)
        if existing:
            return existing, False
        data = ok(conn.append(folder_arg(folder), flags, imaplib.Time2Internaldate(when), raw), "APPEND")
        match = _APPENDUID.search(data[0] or b"")
        if match:
            return f"{int(match.group(1))}:{int(match.group(2))}", True
        return self.find(conn, folder, message_id) or f"{folder}:{message_id}", True

    def move(self, conn: imaplib.IMAP4, uids: list[int], folder: str) -> None:
        """Move UIDs of the selected folder: UID MOVE, else COPY + \\Deleted + EXPUNGE. Gone UIDs are no-ops."""
        self.ensure_folder(conn, folder)
        target, uids_arg = folder_arg(folder), uid_set(uids)
        if "MOVE" in self.capabilities:
            ok(conn.uid("MOVE", uids_arg, target), "UID MOVE")
            return
        ok(conn.uid("COPY", uids_arg, target), "UID COPY")
        ok(conn.uid("STORE", uids_arg, "+FLAGS.SILENT", "(\\Deleted)"), "UID STORE")
        if "UIDPLUS" in self.capabilities:
            ok(conn.uid("EXPUNGE", uids_arg), "UID EXPUNGE")
        else:  # plain EXPUNGE also removes mail others flagged \Deleted, which they asked for anyway
            ok(conn.expunge(), "EXPUNGE")
