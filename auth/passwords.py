"""People's passwords, stored as scrypt hashes (RFC 7914), and high-entropy secrets as SHA-256."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt cost: N=2^15, r=8, p=1 takes ~50 ms and 32 MiB, per OWASP's password storage advice.
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A self-describing scrypt hash: scrypt$N$r$p$salt$hash."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32
    )
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


# Verifying against this when the account does not exist keeps the time the same, so the
# response time does not tell which usernames exist.
_DUMMY = hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored`; always spends one scrypt computation."""
    try:
        scheme, n, r, p, salt, digest = (stored or _DUMMY).split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            password.encode()[:MAX_PASSWORD_LENGTH],
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=32,
        )
    except ValueError:
        return False
    return stored is not None and hmac.compare_digest(computed, _unb64(digest))


def hash_secret(secret: str) -> str:
    """SHA-256 of a random secret (client secrets, refresh tokens, codes): enough, since
    the secret itself has 256 bits of entropy; a slow hash would only cost CPU."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored: str | None) -> bool:
    return stored is not None and hmac.compare_digest(hash_secret(secret), stored)


def new_secret() -> str:
    return secrets.token_urlsafe(32)
