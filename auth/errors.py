"""Authentication errors.

AuthError
└── Unauthenticated(reason)   no, bad, expired or foreign token -> UNAUTHENTICATED
"""

from __future__ import annotations


class AuthError(Exception):
    """Base of the auth package's errors."""


class Unauthenticated(AuthError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
