"""Global ids: opaque, and the same wherever they are shown (API, webhooks)."""

from __future__ import annotations

import base64


def global_id(kind: str, id: str) -> str:
    """base64url of "Kind:id", unpadded."""
    return base64.urlsafe_b64encode(f"{kind}:{id}".encode()).decode().rstrip("=")
