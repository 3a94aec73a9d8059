"""Send replies over SMTP: implicit TLS or STARTTLS by default, never a password in the clear unless allowed."""

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Callable, Literal

from connectors.mailbox import MailboxError, OutgoingMail
from rxinbox import clock

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"tls": 465, "starttls": 587, "plain": 25}


class SmtpLoginError(MailboxError):
    """The server rejected the credentials; retrying with the same ones cannot help."""


def compose(mail: OutgoingMail, message_id: str, sender: str | None = None) -> EmailMessage:
    """The reply as an RFC 5322 message with threading headers, ready to send or to store as a draft."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender or mail.sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(clock.now())
    msg["Message-ID"] = message_id
    if mail.in_reply_to:
        msg["In-Reply-To"] = mail.in_reply_to
        # References lists the whole thread ending with the parent (RFC 5322 3.6.4).
        chain = [r for r in mail.references if r != mail.in_reply_to] + [mail.in_reply_to]
        msg["References"] = " ".join(chain)
    elif mail.references:
        msg["References"] = " ".join(mail.references)
    if mail.idempotency_key:
        msg["X-Rxinbox-Outbound-Id"] = mail.idempotency_key
    msg.set_content(mail.body)
    return msg


@dataclass
class SmtpSender:
    """One SMTP submission server; a connection per send keeps failures isolated and simple to reason about."""

    host: str
    port: int | None = None
    security: Literal["tls", "starttls", "plain"] = "starttls"
    username: str | None = None
    password: Callable[[], str] | None = None
    allow_plaintext_auth: bool = False
    ssl_context: ssl.SSLContext | None = None
    timeout: float = 60.0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port or DEFAULT_PORTS[self.security]}"

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        port = self.port or DEFAULT_PORTS[self.security]
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, port, timeout=self.timeout, context=self._context())
        else:
            smtp = smtplib.SMTP(self.host, port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise MailboxError(f"SMTP server {self.address} does not offer STARTTLS; "
                                       "refusing to continue unencrypted")
                smtp.starttls(context=self._context())
                smtp.ehlo()
            self._login(smtp)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        if not self.username:
            return
        if not smtp.has_extn("auth"):
            log.warning("SMTP server %s offers no AUTH; sending without logging in", self.address)
            return
        if self.security == "plain" and not self.allow_plaintext_auth:
            raise MailboxError(f"refusing to send the SMTP password unencrypted to {self.address}: "
                               "use tls or starttls, or set allow_plaintext_auth for a local test server")
        try:
            smtp.login(self.username, self.password() if self.password else "")
        except smtplib.SMTPAuthenticationError:
            raise SmtpLoginError(f"SMTP login failed for user {self.username} on {self.address}") from None

    def send(self, msg: EmailMessage) -> str:
        """Submit msg to its To/Cc recipients; returns its Message-ID. Never retried here: SMTP is not idempotent."""
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise MailboxError(f"cannot reach SMTP server {self.address}: {type(exc).__name__}: {exc}") from exc
        try:
            refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailboxError(f"SMTP server {self.address} refused every recipient ({len(exc.recipients)})") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailboxError(f"SMTP send via {self.address} failed: {type(exc).__name__}") from exc
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        if refused:
            log.warning("SMTP server %s refused %d of the recipients", self.address, len(refused))
        log.info("reply submitted via SMTP %s", self.address)
        return str(msg["Message-ID"])
