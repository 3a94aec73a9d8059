"""App-only sign-in to Microsoft Graph through O365 and MSAL (client credentials), and the loopback test switches.

Production always talks to graph.microsoft.com and login.microsoftonline.com: mailboxes.yaml has no
URL field on purpose. Tests point the connector at a stand-in with RXINBOX_GRAPH_BASE_URL, honoured
only for 127.0.0.1/localhost; RXINBOX_GRAPH_TEST_TOKEN (same rule) injects a bearer token so MSAL is
never called. Without the token, MSAL's sign-in is also answered by the loopback stand-in.
"""

import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from msal import ConfidentialClientApplication
from O365 import Account
from O365.connection import Connection, MSGraphProtocol
from O365.utils.token import MemoryTokenBackend
from prefect.blocks.system import Secret

from connectors.graph_http import GraphAuthError, GraphUnreachable
from connectors.mailbox import MailboxError
from connectors.mailbox_config import GraphMailboxConfig

GRAPH_URL = "https://graph.microsoft.com/"
GRAPH_SCOPE = GRAPH_URL + ".default"
LOGIN_URL = "https://login.microsoftonline.com/"
BASE_URL_ENV = "RXINBOX_GRAPH_BASE_URL"
TEST_TOKEN_ENV = "RXINBOX_GRAPH_TEST_TOKEN"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
RENEW_MARGIN_SECONDS = 300
_AADSTS = re.compile(r"AADSTS\d+")
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class GraphProtocol(MSGraphProtocol):
    """O365's Graph protocol with a base URL: graph.microsoft.com, or the loopback stand-in in tests."""

    def __init__(self, protocol_url: str = GRAPH_URL, **kwargs) -> None:
        self._protocol_url = protocol_url
        super().__init__(api_version="v1.0", **kwargs)


class LoopbackLogin(requests.Session):
    """MSAL's HTTP client in tests: requests for login.microsoftonline.com go to the stand-in instead."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method, url, *args, **kwargs):
        if isinstance(url, str) and url.startswith(LOGIN_URL):
            url = f"{self.base_url}_login/{url[len(LOGIN_URL):]}"
        return super().request(method, url, *args, **kwargs)


class GraphConnection(Connection):
    """O365's connection; its MSAL client may be given a loopback HTTP client for tests."""

    login_http: requests.Session | None = None

    @property
    def msal_client(self):
        if self._msal_client is None and self.login_http is not None:
            self._msal_client = ConfidentialClientApplication(
                client_id=self.auth[0], client_credential=self.auth[1], authority=self._msal_authority,
                token_cache=self.token_backend, http_client=self.login_http, timeout=self.timeout,
            )
        return super().msal_client


class GraphAccount(Account):
    connection_constructor = GraphConnection


class StaticToken:
    """A fixed bearer token for the loopback stand-in; nothing to renew."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        return self._token

    def renew(self) -> bool:
        return False


class MsalToken:
    """Client-credentials tokens from MSAL through O365's connection, renewed before they expire."""

    def __init__(self, con: Connection, tenant_id: str) -> None:
        self.con, self.tenant_id = con, tenant_id
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() > self._expires - RENEW_MARGIN_SECONDS:
                self._acquire()
            return self._token

    def renew(self) -> bool:
        """After a 401: drop the cached token and ask Entra ID for a new one."""
        with self._lock:
            backend = self.con.token_backend
            for entry in list(backend.search(backend.CredentialType.ACCESS_TOKEN)):
                backend.remove_at(entry)
            self._acquire()
        return True

    def _acquire(self) -> None:
        try:
            result = self.con.msal_client.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except ValueError:
            raise GraphAuthError(f"Microsoft Entra ID does not know tenant {self.tenant_id!r}: check tenant_id "
                                 "in mailboxes.yaml", 400, "tenant_not_found") from None
        except requests.RequestException as exc:
            raise GraphUnreachable(f"cannot reach Microsoft Entra ID to sign in: {type(exc).__name__}") from None
        if "access_token" not in result:
            error = result.get("error", "unknown_error")
            detail = _AADSTS.search(result.get("error_description") or "")
            raise GraphAuthError(f"Microsoft Entra ID refused the app's client credentials for tenant "
                                 f"{self.tenant_id!r}: {error}{f' ({detail.group(0)})' if detail else ''}; check "
                                 "client_id and the secret or certificate", 401, error)
        self._token = result["access_token"]
        self._expires = time.time() + int(result.get("expires_in", 3599))


def loopback_base_url() -> str | None:
    """RXINBOX_GRAPH_BASE_URL when set (tests only): refused unless it points at this machine."""
    raw = os.environ.get(BASE_URL_ENV, "").strip()
    if not raw:
        if os.environ.get(TEST_TOKEN_ENV):
            raise MailboxError(f"{TEST_TOKEN_ENV} is a test switch: it is honoured only together with "
                               f"{BASE_URL_ENV} pointing at 127.0.0.1 or localhost")
        return None
    return checked_loopback(raw)


def checked_loopback(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise MailboxError(f"{BASE_URL_ENV} is a test switch for a local Graph stand-in and must point at "
                           f"127.0.0.1 or localhost, not {parts.hostname!r}")
    return url.rstrip("/") + "/"


def client_credential(config: GraphMailboxConfig) -> str | dict:
    """The app's secret (environment variable or Prefect Secret block) or certificate, exactly one of them."""
    given = [name for name, value in (("client_secret_env", config.client_secret_env),
                                      ("client_secret_block", config.client_secret_block),
                                      ("certificate_path", config.certificate_path)) if value]
    if len(given) != 1:
        raise MailboxError(f"mailbox {config.name!r}: set exactly one of client_secret_env, client_secret_block or "
                           f"certificate_path (found {', '.join(given) or 'none'})")
    if config.client_secret_env:
        secret = os.environ.get(config.client_secret_env)
        if not secret:
            raise MailboxError(f"mailbox {config.name!r}: environment variable {config.client_secret_env} "
                               "(client_secret_env) is not set")
        return secret
    if config.client_secret_block:
        try:
            return Secret.load(config.client_secret_block).get()
        except Exception as exc:  # Prefect raises ValueError or HTTP errors depending on the server
            raise MailboxError(f"mailbox {config.name!r}: cannot load Prefect Secret block "
                               f"{config.client_secret_block!r} ({type(exc).__name__})") from None
    return certificate_credential(config.certificate_path.expanduser(), config.certificate_thumbprint, config.name)


def certificate_credential(path: Path, thumbprint: str | None, name: str) -> dict:
    """MSAL's certificate credential: the PEM private key and the SHA-1 thumbprint of its certificate."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise MailboxError(f"mailbox {name!r}: cannot read certificate_path {path} ({exc.strerror})") from None
    if b"PRIVATE KEY-----" not in pem:
        raise MailboxError(f"mailbox {name!r}: {path} must hold the PEM private key (and its certificate)")
    cert = _PEM_CERT.search(pem)
    if not thumbprint:
        if cert is None:
            raise MailboxError(f"mailbox {name!r}: set certificate_thumbprint or put the certificate in {path}")
        thumbprint = x509.load_pem_x509_certificate(cert.group(0)).fingerprint(hashes.SHA1()).hex()
    credential = {"private_key": pem.decode(), "thumbprint": thumbprint.replace(":", "").upper()}
    if cert is not None:
        credential["public_certificate"] = cert.group(0).decode()
    return credential


def connect(config: GraphMailboxConfig, base_url: str | None = None,
            test_token: str | None = None) -> tuple[GraphAccount, MsalToken | StaticToken]:
    """O365 account and token source for one mailbox; the test switches need a loopback base_url."""
    if base_url is not None:
        base_url = checked_loopback(base_url)
    elif test_token:
        raise MailboxError(f"{TEST_TOKEN_ENV} needs {BASE_URL_ENV} pointing at 127.0.0.1 or localhost")
    credential = "unused: token injected for the loopback stand-in" if test_token else client_credential(config)
    account = GraphAccount(
        (config.client_id, credential), auth_flow_type="credentials", tenant_id=config.tenant_id,
        protocol=GraphProtocol(base_url or GRAPH_URL), main_resource=config.mailbox,
        token_backend=MemoryTokenBackend(), request_retries=0, requests_delay=0, timeout=(10, 60),
    )
    if test_token:
        return account, StaticToken(test_token)
    if base_url is not None:
        account.con.login_http = LoopbackLogin(base_url)
    return account, MsalToken(account.con, config.tenant_id)
