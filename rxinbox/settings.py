"""All configuration in one BaseSettings class; every path lives under RXINBOX_HOME."""

from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings, read from RXINBOX_* environment variables (or a .env file)."""

    model_config = SettingsConfigDict(
        env_prefix="RXINBOX_", env_file=".env", extra="ignore", frozen=True
    )

    home: Path = Field(default=Path(".rxinbox"), description="Data directory for everything rxinbox stores.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite under home when unset.")
    now: datetime | None = Field(default=None, description="Fixed clock (ISO timestamp) for tests and replays.")
    secret_key: str | None = Field(
        default=None, description="Fernet key for PHI at rest; generated into home/secret.key when unset."
    )
    mailboxes_file: Path | None = Field(default=None, description="mailboxes.yaml; default home/mailboxes.yaml.")
    mailbox_name: str = Field(default="local", description="Logical name of the swept mailbox (idempotency key).")
    pharmacy_name: str = "Søndergade Apotek"
    pharmacy_email: str = "apotek@soendergade-apotek.example"
    # Each task run costs the Prefect server a few ms and each batch a pipeline fill: 500 swept 205-211
    # mails/s in `make bench` against 194-207 for 250; a crash replays at most one batch either way.
    batch_size: int = Field(default=500, ge=1, le=5000, description="Messages per task call in a sweep.")
    auto_send: bool = Field(default=False, description="Master switch; the send policy decides per intent.")
    log_level: str = "INFO"
    model_cache: Path | None = Field(
        default=None, description="Where trained triage models are kept; default home/models. Models are "
        "versioned by training data, so installations (and test runs) can share one cache."
    )

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("now", mode="after")
    @classmethod
    def _aware_now(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value

    @cached_property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'rxinbox.db'}"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def models_dir(self) -> Path:
        return self.model_cache or self.home / "models"

    @property
    def key_file(self) -> Path:
        return self.home / "secret.key"

    def ensure_dirs(self) -> None:
        """Create the data directory tree (private to the service user)."""
        for path in (self.home, self.quarantine_dir, self.outbox_dir, self.chroma_dir, self.prefect_home):
            path.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)


def get_settings() -> Settings:
    """Fresh settings from the current environment (cheap; tests change the env between calls)."""
    return Settings()
