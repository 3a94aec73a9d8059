"""`mailboxes.yaml`: the pharmacies and mailboxes one installation sweeps, validated with line numbers."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policy_rules.yaml_errors import load_model


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalMailboxConfig(_Config):
    """A folder of .eml files or a Maildir on this machine (the embedded default)."""

    kind: Literal["local"] = "local"
    name: str
    path: Path


class ImapMailboxConfig(_Config):
    """Any IMAP provider; replies go out over SMTP. Secrets are named, never written here."""

    kind: Literal["imap"] = "imap"
    name: str
    host: str
    port: int | None = Field(default=None, description="Default 993 for tls, 143 for starttls.")
    security: Literal["tls", "starttls", "plain"] = "tls"
    allow_plaintext_auth: bool = Field(default=False, description="Only for a local test server.")
    username: str
    password_env: str | None = Field(default=None, description="Environment variable holding the password.")
    password_secret_block: str | None = Field(default=None, description="Prefect Secret block name.")
    folder: str = "INBOX"
    drafts_folder: str = "Drafts"
    processed_folder: str | None = Field(default=None, description="Move processed mail here; else flag \\Seen.")
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: Literal["tls", "starttls", "plain"] = "starttls"
    from_address: str | None = None

    @model_validator(mode="after")
    def _plaintext_needs_consent(self) -> "ImapMailboxConfig":
        if self.security == "plain" and not self.allow_plaintext_auth:
            raise ValueError("security 'plain' sends the password unencrypted: set allow_plaintext_auth: true "
                             "(only for a local test server) or use tls/starttls")
        return self


class GraphMailboxConfig(_Config):
    """A Microsoft 365 shared mailbox through Microsoft Graph with app-only auth."""

    kind: Literal["graph"] = "graph"
    name: str
    tenant_id: str
    client_id: str
    client_secret_env: str | None = None
    client_secret_block: str | None = None
    certificate_path: Path | None = None
    certificate_thumbprint: str | None = None
    mailbox: str = Field(description="The shared mailbox's address (user principal name).")
    folder: str = "Inbox"
    processed_folder: str | None = "rxinbox-processed"
    max_concurrency: int = Field(default=4, ge=1, le=4)


MailboxConfig = Annotated[
    LocalMailboxConfig | ImapMailboxConfig | GraphMailboxConfig, Field(discriminator="kind")
]


class PharmacyConfig(_Config):
    """One pharmacy and the mailboxes rxinbox sweeps for it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    sweep_every_seconds: int = Field(default=120, ge=30)
    mailboxes: list[MailboxConfig]


class MailboxesFile(_Config):
    """The whole `mailboxes.yaml`."""

    pharmacies: list[PharmacyConfig]

    @model_validator(mode="after")
    def _unique_names(self) -> "MailboxesFile":
        names = [m.name for p in self.pharmacies for m in p.mailboxes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"mailbox names must be unique across pharmacies: {', '.join(duplicates)}")
        return self

    def find(self, name: str) -> tuple[PharmacyConfig, MailboxConfig]:
        for pharmacy in self.pharmacies:
            for mailbox in pharmacy.mailboxes:
                if mailbox.name == name:
                    return pharmacy, mailbox
        raise KeyError(f"no mailbox named {name!r} in mailboxes.yaml")


def load_mailboxes(path: Path) -> MailboxesFile:
    """Read and validate `mailboxes.yaml`; errors name the file, line and field."""
    return load_model(path, MailboxesFile)
