"""Opaque tokens: global ids and cursors, the same wherever they are shown (API, webhooks).

Both are base64url without padding (RFC 4648 §5, §3.2) of a short text: "Kind:id" for a
global id, a list's position for a cursor (services/pages.py). Already-issued ones are held
by clients, so the format never changes; padded input is accepted too.
"""

from __future__ import annotations

import base64
import binascii
import re

# The URL-safe alphabet (RFC 4648 §5), then optional padding: anything else is not ours
# (the standard decoder would silently drop foreign characters instead).
_OPAQUE = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def encode_opaque(text: str) -> str:
    """base64url of the text's UTF-8, unpadded."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_opaque(token: str) -> str | None:
    """The text of an opaque token, or None when it is not base64url of UTF-8."""
    if not _OPAQUE.fullmatch(token):
        return None
    body = token.rstrip("=")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def global_id(kind: str, id: str) -> str:
    """The global id of the object `id` of `kind`: base64url of "Kind:id", unpadded."""
    return encode_opaque(f"{kind}:{id}")


def parse_global_id(token: str) -> tuple[str, str] | None:
    """(kind, id) of a global id, or None when it is not one."""
    text = decode_opaque(token)
    if text is None:
        return None
    kind, _, id = text.partition(":")
    if not (kind.isascii() and kind.isalpha()) or not id:
        return None
    return kind, id
