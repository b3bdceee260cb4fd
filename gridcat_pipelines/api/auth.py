"""Bearer-token authorization: read tokens call reads, admin tokens call everything.

Tokens come from ``GRIDCAT_API_ADMIN_TOKENS`` and ``GRIDCAT_API_READ_TOKENS`` (comma-separated).
A presented token is compared with every configured token in constant time
(``hmac.compare_digest`` on SHA-256 digests, so lengths leak nothing either) and is never
logged or stored: the principal that idempotency records are scoped to is a digest prefix.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from gridcat_pipelines.errors import PERMISSION_DENIED, UNAUTHENTICATED, GridcatError

READ = "read"
ADMIN = "admin"
ANONYMOUS = "anonymous"  # the principal of every request under --no-auth


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def parse_tokens(text: str | None) -> list[str]:
    """Comma-separated tokens, blanks dropped."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role and a non-secret id (a digest prefix of the token)."""

    id: str
    role: str

    def require(self, role: str) -> None:
        """``PERMISSION_DENIED`` unless this principal may call a method needing ``role``."""
        if role == ADMIN and self.role != ADMIN:
            raise GridcatError(PERMISSION_DENIED, "this token may only call read methods")


class TokenAuth:
    """Checks ``Authorization: Bearer <token>`` against the configured tokens."""

    def __init__(self, admin_tokens: list[str], read_tokens: list[str], *, enabled: bool = True):
        self.enabled = enabled
        self._tokens = [(_digest(t), ADMIN) for t in admin_tokens] + [(_digest(t), READ) for t in read_tokens]

    @classmethod
    def from_settings(cls, admin_tokens: str, read_tokens: str, *, enabled: bool = True) -> TokenAuth:
        """Tokens from the comma-separated ``GRIDCAT_API_ADMIN_TOKENS`` / ``GRIDCAT_API_READ_TOKENS``."""
        return cls(parse_tokens(admin_tokens), parse_tokens(read_tokens), enabled=enabled)

    @property
    def configured(self) -> bool:
        """Whether any token is configured."""
        return bool(self._tokens)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization`` header value (``UNAUTHENTICATED`` otherwise)."""
        if not self.enabled:
            return Principal(ANONYMOUS, ADMIN)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GridcatError(UNAUTHENTICATED, "send Authorization: Bearer <token>")
        presented = _digest(token.strip())
        role = None
        for digest, token_role in self._tokens:  # no early exit: the time does not depend on the match
            if hmac.compare_digest(digest, presented) and role != ADMIN:
                role = token_role
        if role is None:
            raise GridcatError(UNAUTHENTICATED, "unknown token")
        return Principal(presented.hex()[:16], role)
