"""Session identifiers, their stored hashes, and what is signed with the secret key.

The CSRF token bound to each session and the device cookie that proves an earlier
sign-in to one account from this browser are both keyed MACs (`keyed_mac`).
"""

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

# Clocks of two instances may disagree a little: a cookie "issued" this far ahead still counts.
DEVICE_CLOCK_SKEW = timedelta(minutes=5)


def new_session_token() -> str:
    """A random 256-bit session identifier."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a high-entropy token (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_mac(key: bytes, purpose: bytes, value: str) -> str:
    """HMAC-SHA256 of `value` for one purpose, so a MAC made for one use fits no other."""
    mac = hmac.new(key, purpose + b":" + value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_token_for(session_token: str, key: bytes) -> str:
    """The session's CSRF token: a keyed MAC of its id, so it needs no storage."""
    return keyed_mac(key, b"csrf", session_token)


def csrf_token_valid(candidate: str | None, session_token: str, key: bytes) -> bool:
    if not candidate:
        return False
    # Bytes: compare_digest refuses non-ASCII str, and a header may carry anything.
    return hmac.compare_digest(candidate.encode(), csrf_token_for(session_token, key).encode())


def _device_mac(email: str, nonce: str, issued: int, key: bytes) -> str:
    return keyed_mac(key, b"device", f"{email}\n{nonce}\n{issued}")


def device_cookie_for(email: str, key: bytes, *, now: datetime) -> str:
    """A device cookie (OWASP): a new random nonce, bound to the account and signed."""
    nonce = secrets.token_urlsafe(16)
    issued = int(now.timestamp())
    return f"{nonce}.{issued}.{_device_mac(email, nonce, issued, key)}"


def device_nonce(
    cookie: str | None, email: str, key: bytes, *, now: datetime, max_age: timedelta
) -> str | None:
    """The nonce of a device cookie signed for this e-mail and not too old; else None."""
    if not cookie or len(cookie) > 200:
        return None
    nonce, _, rest = cookie.partition(".")
    issued_text, _, mac = rest.partition(".")
    if not nonce or not mac or not issued_text.isascii() or not issued_text.isdigit():
        return None
    issued = int(issued_text)
    expected = _device_mac(email, nonce, issued, key)
    # Bytes: compare_digest refuses non-ASCII str, and a cookie may carry anything.
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        return None
    age = now - datetime.fromtimestamp(issued, now.tzinfo)
    return nonce if -DEVICE_CLOCK_SKEW <= age <= max_age else None
