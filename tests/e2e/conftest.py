"""Real local servers for end-to-end tests: a throw-away Dovecot (IMAP) and an aiosmtpd SMTP server."""

import itertools
import shutil
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from connectors.model_store import load_or_train, model_path, model_version, training_rows
from tests.e2e.dovecot import DOVECOT, MISSING, DovecotServer, ImapAccount, free_port, write_self_signed

_users = itertools.count(1)
MODEL_CACHE = Path(tempfile.gettempdir()) / "rxinbox-test-models"


@pytest.fixture
def seeded_home(home) -> Path:
    """A fresh home holding the trained triage model: training it in every home takes minutes on 2 cores.

    The cache is keyed by the model version (a hash of the training data, config and scikit-learn),
    so a stale artefact is never used.
    """
    load_or_train(MODEL_CACHE)
    source = model_path(MODEL_CACHE, model_version(training_rows()))
    (home / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, home / "models" / source.name)
    return home


@pytest.fixture(scope="session")
def dovecot_server():
    """One Dovecot for the session, under a world-traversable temp dir (its mail processes run as 'dovecot')."""
    if DOVECOT is None:
        pytest.skip(MISSING)
    root = Path(tempfile.mkdtemp(prefix="rxinbox-dovecot-"))
    server = DovecotServer(root).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot(dovecot_server) -> ImapAccount:
    """A fresh, empty mailbox on the session's Dovecot (a new user name each test)."""
    return dovecot_server.account(f"apotek{next(_users)}")


@pytest.fixture
def imap_tls_context(dovecot) -> ssl.SSLContext:
    """A client context that trusts exactly the test server's self-signed certificate."""
    return ssl.create_default_context(cafile=str(dovecot.cert_file))


class Collector:
    """aiosmtpd handler that keeps every accepted message."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """Where a test SMTP server listens and what it received."""

    host: str
    port: int
    collector: Collector
    cert_file: Path | None = None
    logins: list[str] = field(default_factory=list)

    @property
    def messages(self) -> list[bytes]:
        return [e.original_content or e.content for e in self.collector.envelopes]


def _serve(controller: Controller, server: SmtpServer):
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def smtp_server():
    """A plain SMTP server on 127.0.0.1 without AUTH, collecting messages (like a local relay)."""
    collector, port = Collector(), free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    yield from _serve(controller, SmtpServer("127.0.0.1", port, collector))


@pytest.fixture
def smtp_tls_server(tmp_path):
    """An SMTP submission server: STARTTLS with a self-signed certificate, AUTH required after TLS."""
    cert, key = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    write_self_signed(cert, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    collector, port = Collector(), free_port()
    server = SmtpServer("127.0.0.1", port, collector, cert_file=cert)

    def authenticate(smtp, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"smtp-secret"
        server.logins.append(auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?")
        # handled=False: aiosmtpd itself answers 535 on failure (else the client waits for a reply forever).
        return AuthResult(success=ok, handled=False)

    controller = Controller(collector, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=authenticate, auth_required=True, auth_require_tls=True)
    yield from _serve(controller, server)


@pytest.fixture
def smtp_plain_auth_server():
    """A plaintext SMTP server that offers AUTH (a client must refuse to log in over it by default)."""
    collector, port = Collector(), free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port, auth_require_tls=False,
                            authenticator=lambda *args: AuthResult(success=True, handled=False))
    yield from _serve(controller, SmtpServer("127.0.0.1", port, collector))
