"""TOTP (RFC 6238) secrets, codes accepted once, and one-time recovery codes."""

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken

RECOVERY_CODE_COUNT = 10
TOTP_PERIOD = 30
# Codes of the previous and next 30 s step are accepted, for clock drift.
TOTP_DRIFT_STEPS = 1


def _fernet(key: bytes) -> Fernet:
    derived = hashlib.sha256(b"ctcp-totp-secret:" + key).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_secret(secret: str, key: bytes) -> str:
    return _fernet(key).encrypt(secret.encode()).decode()


def decrypt_secret(token: str, key: bytes) -> str | None:
    try:
        return _fernet(key).decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, *, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret, interval=TOTP_PERIOD).provisioning_uri(name=email, issuer_name=issuer)


def matching_step(secret: str, code: str, *, at: datetime, after_step: int | None) -> int | None:
    """The time step whose code this is, if valid and later than `after_step` (no replay)."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_PERIOD)
    current = totp.timecode(at)
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def code_at(secret: str, at: datetime) -> str:
    """The code an authenticator app shows at `at` (for tests and the demo)."""
    return pyotp.TOTP(secret, interval=TOTP_PERIOD).at(at)


def new_recovery_codes() -> list[str]:
    """Ten codes of 80 random bits each, grouped for reading: `xxxx-xxxx-xxxx-xxxx`."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def normalise_recovery_code(code: str) -> str:
    return code.strip().lower().replace(" ", "").replace("-", "")


def recovery_code_hash(code: str) -> str:
    return hashlib.sha256(normalise_recovery_code(code).encode()).hexdigest()
