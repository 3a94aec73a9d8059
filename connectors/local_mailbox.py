"""The embedded default mailbox: a folder of .eml files or a Maildir on local disk."""

import logging
import os
import threading
from email.header import Header
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Iterator

from connectors.mailbox import MailboxError, OutgoingMail
from data_contracts.models import InboundMessage
from rxinbox import clock

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 50 * 1024 * 1024
EML_SUFFIXES = {".eml", ".msg", ".txt", ""}


def is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


class LocalMailbox:
    """Reads .eml files (or a Maildir's new/ and cur/); drafts and sent mail go under RXINBOX_HOME.

    A plain folder is never modified: the database records what was processed. A Maildir gets
    real Maildir semantics: processed mail moves from new/ to cur/ with the Seen flag.
    """

    # Replies per delivery transaction: writing a file is quick, so the claim's lock is held briefly.
    delivery_batch = 500

    def __init__(self, source: Path, name: str, home: Path) -> None:
        if not source.is_dir():
            raise MailboxError(f"mailbox folder {source} does not exist or is not a folder")
        self.source = source.resolve()
        self.name = name
        self.maildir = is_maildir(self.source)
        self.drafts_dir = home / "drafts" / name
        self.sent_dir = home / "outbox" / name

    def _candidates(self) -> list[Path]:
        if self.maildir:
            files = [p for sub in ("new", "cur") for p in (self.source / sub).iterdir()]
        else:
            files = [p for p in self.source.iterdir() if p.suffix.lower() in EML_SUFFIXES]
        return sorted(p for p in files if p.is_file() and not p.name.startswith("."))

    def list_refs(self) -> list[str]:
        return [str(p.relative_to(self.source)) for p in self._candidates()]

    def fetch(self, refs: list[str]) -> Iterator[InboundMessage]:
        for ref in refs:
            path = self.source / ref
            try:
                size = path.stat().st_size
                # An oversized file is still handed over (truncated) so it is quarantined, not lost.
                with path.open("rb") as handle:
                    raw = handle.read(MAX_MESSAGE_BYTES + 1)
            except FileNotFoundError:
                log.warning("message vanished between listing and fetching; it will be seen next sweep")
                continue
            if size > MAX_MESSAGE_BYTES:
                log.warning("message larger than %d bytes", MAX_MESSAGE_BYTES)
            yield InboundMessage(mailbox=self.name, ref=ref, raw=raw, folder=path.parent.name)

    def mark_processed(self, refs: list[str]) -> None:
        if not self.maildir:
            return
        for ref in refs:
            path = self.source / ref
            if path.parent.name != "new" or not path.exists():
                continue
            base = path.name.split(":2,")[0]
            os.replace(path, self.source / "cur" / f"{base}:2,S")

    def move(self, ref: str, folder: str) -> None:
        target = self.source.parent / f"{self.source.name}.{folder}"
        target.mkdir(parents=True, exist_ok=True)
        os.replace(self.source / ref, target / Path(ref).name)

    def _write(self, directory: Path, mail: OutgoingMail, draft: bool) -> str:
        directory.mkdir(parents=True, exist_ok=True)
        name = (mail.idempotency_key or make_msgid().strip("<>")) + ".eml"
        path = directory / name
        if path.exists():
            return str(path)
        # compat32 MIMEText: the modern header registry costs milliseconds per message.
        msg = MIMEText(mail.body, "plain", "utf-8")
        msg["From"] = mail.sender
        msg["To"] = mail.to
        msg["Subject"] = Header(mail.subject, "utf-8")
        msg["Date"] = format_datetime(clock.now())
        msg["Message-ID"] = f"<{mail.idempotency_key}@{mail.sender.rpartition('@')[2] or 'rxinbox.local'}>" \
            if mail.idempotency_key else make_msgid(domain=mail.sender.rpartition("@")[2] or None)
        if mail.in_reply_to:
            msg["In-Reply-To"] = mail.in_reply_to
            refs = list(mail.references) + ([mail.in_reply_to] if mail.in_reply_to not in mail.references else [])
            msg["References"] = " ".join(refs)
        if draft:
            msg["X-Rxinbox-Draft"] = "yes"
        # A private temp name: two workers delivering the same reply must not write one file together.
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(msg.as_bytes())
        os.replace(tmp, path)
        return str(path)

    def save_draft(self, mail: OutgoingMail) -> str:
        return self._write(self.drafts_dir, mail, draft=True)

    def send(self, mail: OutgoingMail) -> str:
        return self._write(self.sent_dir, mail, draft=False)
