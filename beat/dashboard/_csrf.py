"""CSRF protection: a signed double-submit cookie.

Each browser gets a random *nonce* in an HttpOnly, ``SameSite=Strict`` cookie the first time
it loads a page. Every form of that page carries ``token = HMAC-SHA256(secret, nonce)``. A
POST is accepted only if its form token is the HMAC of its cookie's nonce. Another site can
make the browser send the cookie (where SameSite does not stop it) but can neither read the
page's token nor compute one without the secret; a cookie planted from a sibling sub-domain
comes without a matching token for the same reason. Nothing is stored server-side, so any
number of processes sharing the secret accept each other's tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["COOKIE", "FIELD", "CsrfGuard"]

COOKIE = "beat_csrf"
FIELD = "csrf_token"
_NONCE_BYTES = 32  # 256 bits of nonce: unguessable, and the cookie stays short
_MIN_SECRET_BYTES = 16


class CsrfGuard:
    """Makes nonces and checks tokens with one ``secret`` (random per process when ``None``)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes | None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    @staticmethod
    def secret_problem(secret: object) -> str | None:
        """Why ``secret`` is unusable, or ``None`` if it is fine."""
        if secret is None:
            return None
        if not isinstance(secret, (bytes, str)):
            return f"secret must be bytes or str, got {type(secret).__name__}"
        if len(secret.encode() if isinstance(secret, str) else secret) < _MIN_SECRET_BYTES:
            return f"secret must be at least {_MIN_SECRET_BYTES} bytes long"
        return None

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(_NONCE_BYTES)

    @staticmethod
    def plausible_nonce(value: str | None) -> bool:
        """Whether a cookie value looks like one of our nonces (else a new one is issued)."""
        return (
            value is not None
            and 32 <= len(value) <= 64
            and all(c.isalnum() or c in "-_" for c in value)
        )

    def token_for(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode("ascii"), hashlib.sha256).hexdigest()

    def valid(self, nonce: str | None, token: str | None) -> bool:
        """Whether ``token`` was issued for ``nonce`` (constant-time comparison)."""
        if not token or nonce is None or not self.plausible_nonce(nonce):
            return False
        return hmac.compare_digest(self.token_for(nonce), token)
