"""Auth fixtures: argon2 and scrypt with light parameters (the same algorithms and code
paths; the default parameters cost 0.1-0.5 s a hash on these machines, by design)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from workbench.auth import keys, passwords


@pytest.fixture(autouse=True)
def light_argon2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    light = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", light)
    monkeypatch.setattr(passwords, "_DUMMY", light.hash("dummy password"))
    monkeypatch.setattr(keys, "SCRYPT", {"n": 2**10, "r": 8, "p": 1})  # new key files only
    yield
