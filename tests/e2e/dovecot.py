"""A throw-away Dovecot IMAP server for end-to-end tests (Debian package `dovecot-imapd`).

Each server lives under one temp dir: config, Maildirs, logs and a self-signed certificate. It
listens on 127.0.0.1 on two free ports: plain IMAP (STARTTLS offered, plaintext LOGIN allowed, for
the local test listener only) and implicit TLS (IMAPS). Every user name logs in with the one test
password and gets its own empty Maildir, so each test takes a fresh mailbox by taking a fresh name
(a passwd-file is re-read at most once a second, which raced with users added between tests).
"""

import datetime
import imaplib
import ipaddress
import os
import pwd
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evals.mailgen import load_rows, render

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
DOVEADM = shutil.which("doveadm") or ("/usr/bin/doveadm" if Path("/usr/bin/doveadm").exists() else None)
MISSING = "dovecot is not installed: apt-get install -y dovecot-imapd (the IMAP end-to-end tests need it)"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/log/dovecot.log
info_log_path = {root}/log/dovecot.log
ssl = yes
ssl_cert = <{root}/tls/cert.pem
ssl_key = <{root}/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
# A Danish Sent folder marked \\Sent, as Outlook/Exchange name it: the connector must find it by its flag.
namespace inbox {{
  inbox = yes
  mailbox "Sendt post" {{
    auto = create
    special_use = \\Sent
  }}
}}
mail_max_userip_connections = 200
first_valid_uid = 0
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
# No auth penalty: after the wrong-password test it would delay every later login from 127.0.0.1.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
"""


@dataclass(frozen=True)
class ImapAccount:
    """One mail user on a test server and where to reach it."""

    host: str
    port: int
    tls_port: int
    user: str
    password: str
    cert_file: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_self_signed(cert_file: Path, key_file: Path) -> None:
    """A certificate for 127.0.0.1/localhost that a test's SSL context can trust explicitly."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


class DovecotServer:
    """One Dovecot instance under a temp dir: start it, hand out fresh accounts, stop it with doveadm."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.tls_port = free_port()
        self.config = root / "dovecot.conf"
        self.cert_file = root / "tls" / "cert.pem"
        self.password = "apotek-secret"
        # Dovecot refuses to run logins as root and mail users with uid 0; as root use its own users.
        if os.geteuid() == 0:
            self.uid, self.gid = pwd.getpwnam("dovecot").pw_uid, pwd.getpwnam("dovecot").pw_gid
            users = {"internal_user": "dovecot", "internal_group": "dovecot", "login_user": "dovenull"}
        else:
            me = pwd.getpwuid(os.geteuid())
            self.uid, self.gid = me.pw_uid, me.pw_gid
            users = {"internal_user": me.pw_name, "internal_group": me.pw_name, "login_user": me.pw_name}
        self._users = users

    def start(self) -> "DovecotServer":
        for sub in ("run", "state", "log", "tls", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
            (self.root / sub).chmod(0o755)
        self.root.chmod(0o755)
        write_self_signed(self.cert_file, self.root / "tls" / "key.pem")
        (self.root / "mail").chmod(0o700)
        os.chown(self.root / "mail", self.uid, self.gid)
        self.config.write_text(CONFIG.format(root=self.root, port=self.port, tls_port=self.tls_port, uid=self.uid,
                                             gid=self.gid, password=self.password, **self._users))
        # Dovecot daemonises; its children inherit stdout/stderr, so never capture them through a pipe.
        errors = self.root / "log" / "start.err"
        with errors.open("wb") as handle:
            started = subprocess.run([DOVECOT, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=handle, timeout=30)
        if started.returncode != 0:
            raise RuntimeError(f"dovecot failed to start: {errors.read_text(errors='replace')}\n{self.log()}")
        deadline = time.monotonic() + 20
        while not self._listening():
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not start listening on 127.0.0.1:{self.port}:\n{self.log()}")
            time.sleep(0.05)
        return self

    def _listening(self) -> bool:
        for port in (self.port, self.tls_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
        return True

    def account(self, user: str) -> ImapAccount:
        """A mail user; Dovecot creates its Maildir on first login."""
        if (self.root / "mail" / user).exists():
            raise ValueError(f"user {user} was used before; take a fresh name for a fresh mailbox")
        return ImapAccount("127.0.0.1", self.port, self.tls_port, user, self.password, self.cert_file)

    def kick(self, user: str) -> None:
        """Drop every IMAP connection of user from the server side."""
        subprocess.run([DOVEADM, "-c", str(self.config), "kick", user], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)

    def log(self) -> str:
        path = self.root / "log" / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        subprocess.run([DOVEADM, "-c", str(self.config), "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)


def realistic_messages(count: int, seed: int = 5) -> list[bytes]:
    """Pharmacy mail rendered from the team-written triage set, with unique Message-IDs, CRLF line ends."""
    rng, rows = random.Random(seed), load_rows()
    return [render(rows[(n * 37) % len(rows)], n, rng).replace(b"\n", b"\r\n") for n in range(count)]


def admin_connection(account: ImapAccount, folder: str | None = "INBOX") -> imaplib.IMAP4:
    """An independent client (what a member of staff's mail program sees), folder created and selected."""
    conn = imaplib.IMAP4(account.host, account.port)
    conn.login(account.user, account.password)
    if folder:
        conn.create(f'"{folder}"')
        conn.select(f'"{folder}"')
    return conn


def append_messages(account: ImapAccount, raws: list[bytes], folder: str = "INBOX") -> None:
    conn = admin_connection(account, folder)
    for raw in raws:
        typ, data = conn.append(f'"{folder}"', None, None, raw)
        if typ != "OK":
            raise RuntimeError(f"APPEND failed: {data}")
    conn.logout()


def uids_with(conn: imaplib.IMAP4, *criteria: str) -> list[int]:
    """UIDs in the selected folder matching a UID SEARCH (after a NOOP, so other sessions' changes show)."""
    conn.noop()
    return [int(u) for u in conn.uid("SEARCH", *criteria)[1][0].split()]
