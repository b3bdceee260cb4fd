"""Opaque, tamper-evident page tokens bound to the filters of the listing that issued them.

A token is ``base64url(payload) "." base64url(HMAC-SHA256(secret, payload))``; the payload
holds the last key of the page and a digest of the filters. A token that was altered, that
came from another database, or that is used with other filters is ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from gridcat_pipelines.errors import invalid_argument

_VERSION = 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def filters_digest(filters: dict[str, Any]) -> str:
    """A short digest of the listing's filters, stored in the token."""
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def encode_token(secret: bytes, after: list[Any], filters: dict[str, Any]) -> str:
    """A token that resumes a listing after ``after`` (the last key returned)."""
    payload = json.dumps({"v": _VERSION, "a": after, "f": filters_digest(filters)}, separators=(",", ":")).encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()[:20]
    return f"{_b64(payload)}.{_b64(mac)}"


def decode_token(secret: bytes, token: str, filters: dict[str, Any]) -> list[Any]:
    """The resume key inside ``token``; ``INVALID_ARGUMENT`` if it was tampered with or the filters differ."""
    try:
        payload_text, mac_text = token.split(".", 1)
        payload = _unb64(payload_text)
        mac = _unb64(mac_text)
    except (ValueError, binascii.Error):
        raise invalid_argument("page_token is not a token this service issued") from None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()[:20]
    if not hmac.compare_digest(mac, expected):
        raise invalid_argument("page_token is not a token this service issued (signature mismatch)")
    data = json.loads(payload)
    if data.get("v") != _VERSION or not isinstance(data.get("a"), list):
        raise invalid_argument("page_token has an unknown format")
    if data.get("f") != filters_digest(filters):
        raise invalid_argument(
            "page_token was issued for other filters; repeat the listing's filters or start without a token"
        )
    return data["a"]
