"""Password hashing with argon2id (argon2-cffi), and the rules a new password meets."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from workbench.errors import WorkbenchError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; a bound keeps a hostile request cheap to refuse
_hasher = PasswordHasher()
# Verified against when the user does not exist, so that a wrong name costs as much time as
# a wrong password and the answer's delay does not tell which one was wrong. Made at the first
# verification, not at import: a hash costs 0.1-0.5 s by design, and every command-line start
# imports this module.
_DUMMY: str | None = None


class PasswordRejected(WorkbenchError, ValueError):
    """A new password that does not meet the rules (the message says which)."""


def check_new_password(password: str) -> str:
    """Give the password back if it meets the rules; raise PasswordRejected naming the rule."""
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"password: at least {MIN_LENGTH} characters, got {len(password)}")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"password: at most {MAX_LENGTH} characters")
    if password.strip() != password:
        raise PasswordRejected("password: no leading or trailing spaces")
    return password


def hash_password(password: str) -> str:
    """Give the argon2id hash (with its salt and parameters) of a new password."""
    return _hasher.hash(check_new_password(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Tell whether `password` matches `stored_hash` (None: no such user, always False)."""
    global _DUMMY
    if _DUMMY is None:  # made before any verification, whether the user exists or not
        _DUMMY = _hasher.hash(secrets.token_urlsafe(16))
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def one_time_password() -> str:
    """Give a random password fit to print once (for the first admin)."""
    return secrets.token_urlsafe(15)
