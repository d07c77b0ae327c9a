"""Settings from `CTCP_`-prefixed environment variables or a `.env` file."""

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, Request
from pydantic import (
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_VAR_DIR = PROJECT_ROOT / "var"

# Secrets that must never protect a production deployment.
KNOWN_WEAK_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev", "development"})
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """Every setting of the platform; one instance per process."""

    model_config = SettingsConfigDict(
        env_prefix="CTCP_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "test", "production"] = "development"
    var_dir: Path = DEFAULT_VAR_DIR
    database_url: str = ""
    # Migrations run as the schema's owner; the app (CTCP_DATABASE_URL) as a role that owns
    # nothing and may not rewrite the audit log. Unset: the same URL as the app.
    migration_database_url: str = ""
    # In production the app refuses to start when its PostgreSQL role could rewrite the
    # audit log (owner, member of an owner, superuser, BYPASSRLS, CREATEROLE); true: warn.
    allow_unsafe_database_role: bool = False
    secret_key: SecretStr | None = None

    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=24 * 30)
    session_cookie_name: str = "ctcp_session"
    # None: Secure when the request arrived over HTTPS; True/False forces it.
    cookie_secure: bool | None = None
    trusted_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For, X-Forwarded-Proto
    # and X-Request-ID are believed; empty: no forwarded header is believed from anyone.
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)

    mfa_required_roles: Annotated[frozenset[str], NoDecode] = frozenset(
        {"platform_admin", "consent_officer", "auditor"}
    )
    mfa_issuer: str = "CTCP"
    # Separation of duties: a platform administrator holds no content role unless allowed.
    admin_may_hold_content_roles: bool = False

    # Failed sign-ins counted per (account, source address): the lock an attacker's own
    # address earns, never the owner's. Across all addresses, an account allows more
    # failures before a delay that only a correct password and second factor pass; a
    # source address, more again across every account it tries (password spraying).
    login_max_failures: int = Field(default=5, ge=1)
    login_account_max_failures: int = Field(default=20, ge=1)
    login_address_max_failures: int = Field(default=30, ge=1)
    login_failure_window_minutes: int = Field(default=15, ge=1)
    login_lockout_base_seconds: int = Field(default=60, ge=1)
    login_lockout_max_seconds: int = Field(default=3600, ge=1)
    # Device cookies (OWASP): a signed cookie set at each sign-in, binding the account to
    # this browser. Its attempts are counted per device (CTCP_LOGIN_MAX_FAILURES) instead
    # of under the address and account keys, so no one else's failures lock it out.
    device_cookie_name: str = "ctcp_device"
    device_cookie_days: int = Field(default=180, ge=1, le=400)

    # argon2id cost; never below OWASP's minimum (19 MiB, t=2, p=1).
    argon2_memory_kib: int = Field(default=19456, ge=19456)
    argon2_time_cost: int = Field(default=2, ge=2)
    argon2_parallelism: int = Field(default=1, ge=1)

    _secret: bytes | None = PrivateAttr(default=None)

    attachment_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    db_pool_size: int = Field(default=20, ge=1)

    # OAuth2 client credentials: opaque bearer tokens, and limits per client and per address.
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    rate_limit_per_client: int = Field(default=600, ge=1)
    rate_limit_per_address: int = Field(default=1200, ge=1)

    # Where links in e-mails point: the address users reach the platform at.
    public_base_url: str = "http://127.0.0.1:8000"
    # Notifications by SMTP; no host means nothing is sent (the development default).
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_from: str = "CTCP <no-reply@ctcp.example>"
    smtp_timeout_seconds: float = Field(default=10, gt=0)
    notification_retry_base_seconds: int = Field(default=30, ge=1)
    notification_retry_max_seconds: int = Field(default=3600, ge=1)
    notification_max_attempts: int = Field(default=8, ge=1)
    notification_poll_seconds: float = Field(default=10, gt=0)
    # How often each app process reminds States' focal points of contact points to confirm
    # (claims make each reminder go once, whatever the number of processes); 0: never.
    contact_reminder_seconds: float = Field(default=3600, ge=0)
    # The change feed keeps superseded entries (and those of objects no Compact entity may
    # read any more) this many days; a cursor from before what it removed is answered 410.
    change_feed_retention_days: int = Field(default=30, ge=1)
    # How often each app process applies that retention; 0: never from this process.
    change_feed_purge_seconds: float = Field(default=3600, ge=0)
    # How often each app process records expiries (and entries turning stale) without
    # waiting for a write or a read of the feed; 0: never from this process.
    change_feed_sweep_seconds: float = Field(default=5, ge=0)
    # Webhooks of the change feed (docs/webhooks.md). Hosts or CIDR networks whose
    # private, loopback or link-local addresses an endpoint may still use (a receiver
    # inside the organization's network, or a test receiver on 127.0.0.1); outside
    # production, an endpoint on a listed host may also use plain http.
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    webhook_retry_base_seconds: int = Field(default=30, ge=1)
    webhook_retry_max_seconds: int = Field(default=6 * 3600, ge=1)
    webhook_max_attempts: int = Field(default=12, ge=1)
    # How often each app process looks for due deliveries; 0: no sender in this process.
    webhook_poll_seconds: float = Field(default=5, ge=0)

    # Signed checkpoints of the audit chain, kept outside the database (see README).
    audit_signing_key_file: Path | None = None
    audit_public_key_file: Path | None = None
    audit_checkpoint_dir: Path | None = None
    audit_checkpoint_every_events: int = Field(default=1000, ge=1)
    audit_checkpoint_every_minutes: float = Field(default=10, gt=0)

    @field_validator("mfa_required_roles", mode="before")
    @classmethod
    def _split_roles(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_webhook_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("public_base_url")
    @classmethod
    def _strip_base_url(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator(
        "smtp_host",
        "smtp_username",
        "audit_signing_key_file",
        "audit_public_key_file",
        "audit_checkpoint_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'ctcp.db'}"
        if not self.migration_database_url:
            self.migration_database_url = self.database_url
        if self.environment == "production":
            key = self.secret_key.get_secret_value() if self.secret_key else ""
            if key.lower() in KNOWN_WEAK_SECRETS or len(key) < MIN_SECRET_LENGTH:
                raise ValueError(
                    "CTCP_SECRET_KEY must be set to a random value of at least "
                    f"{MIN_SECRET_LENGTH} characters in production"
                )
        return self

    @property
    def audit_checkpoints(self) -> Path:
        """Where signed checkpoints of the audit chain are written: outside the database."""
        return self.audit_checkpoint_dir or self.var_dir / "audit-checkpoints"

    def secret(self) -> bytes:
        """The key that signs and encrypts; in development, generated once under var/."""
        if self._secret is None:
            self._secret = self._read_secret()
        return self._secret

    def _read_secret(self) -> bytes:
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value().encode()
        path = self.var_dir / "secret_key"
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()


async def settings_of_app(request: Request) -> Settings:
    """The settings the running app was created with (a route's dependency)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(settings_of_app)]
