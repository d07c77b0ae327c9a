"""Session identifiers, their stored hashes, and the CSRF token bound to each session."""

import base64
import hashlib
import hmac
import secrets


def new_session_token() -> str:
    """A random 256-bit session identifier."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a high-entropy token (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(session_token: str, key: bytes) -> str:
    """The session's CSRF token: a keyed MAC of its id, so it needs no storage."""
    mac = hmac.new(key, b"csrf:" + session_token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_token_valid(candidate: str | None, session_token: str, key: bytes) -> bool:
    if not candidate:
        return False
    # Bytes: compare_digest refuses non-ASCII str, and a header may carry anything.
    return hmac.compare_digest(candidate.encode(), csrf_token_for(session_token, key).encode())
