"""Failed-login limits: after `max_failures` failures in a row a user name (or a client
address) is locked out, for a time that doubles with each lockout in a row, up to a cap.

Pure policy over `ThrottleRow`s; `workbench.auth.accounts` reads and stores them, so the
counts hold across restarts. A successful login clears the user's and the address's rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from workbench.store.users import ThrottleRow


@dataclass(frozen=True)
class LockoutPolicy:
    """How many failures lock, and for how long."""

    max_failures: int = 5
    lockout_s: float = 30.0
    max_lockout_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError(f"login_max_failures must be >= 1, got {self.max_failures}")
        if not 0 < self.lockout_s <= self.max_lockout_s:
            raise ValueError(
                f"login_lockout_s must be > 0 and <= login_max_lockout_s, got "
                f"{self.lockout_s} and {self.max_lockout_s}"
            )

    def lockout_length_s(self, lockouts: int) -> float:
        """Give how long the `lockouts`-th lockout in a row lasts."""
        return min(self.lockout_s * 2 ** (lockouts - 1), self.max_lockout_s)


def locked_for_s(row: ThrottleRow | None, now: dt.datetime) -> float:
    """Give how many seconds the subject stays locked out (0: not locked)."""
    if row is None or row.locked_until is None or row.locked_until <= now:
        return 0.0
    return (row.locked_until - now).total_seconds()


def after_failure(
    row: ThrottleRow | None, kind: str, subject: str, now: dt.datetime, policy: LockoutPolicy
) -> ThrottleRow:
    """Give the subject's row after one more failed login (locking it at the limit)."""
    if row is None:
        row = ThrottleRow(kind, subject, 0, 0, None, now)
    failures = row.failures + 1
    if failures < policy.max_failures:
        return replace(row, failures=failures, updated_at=now)
    lockouts = row.lockouts + 1
    until = now + dt.timedelta(seconds=policy.lockout_length_s(lockouts))
    return replace(row, failures=0, lockouts=lockouts, locked_until=until, updated_at=now)
