"""Where a store lives: a DuckDB file path, or a PostgreSQL URL (`postgresql://...`).

A URL is shown only with its password masked (`describe`), in messages and in logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from workbench.store.errors import StoreError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_MASK = "***"


def is_postgres_url(target: str | Path) -> bool:
    """Tell whether a store target names a PostgreSQL database rather than a DuckDB file."""
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def mask_url(url: str) -> str:
    """Give a connection URL with its password (in the user part or the query) masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.split(":", 1)[0] + ":" + _MASK
        netloc = f"{user}@{host}"
    query = parts.query
    if query:
        pairs = [(k, _MASK if k == "password" else v) for k, v in parse_qsl(query, True)]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class PostgresTarget:
    """A PostgreSQL database by URL (kept whole: the password is needed to connect)."""

    url: str

    def describe(self) -> str:
        return mask_url(self.url)

    def database(self) -> str:
        return urlsplit(self.url).path.lstrip("/") or "(the user's default database)"

    def user(self) -> str:
        netloc = urlsplit(self.url).netloc
        user = netloc.rpartition("@")[0].split(":", 1)[0] if "@" in netloc else ""
        return user or "(the login user)"


def parse_target(target: str | Path) -> Path | PostgresTarget:
    """Give the DuckDB file path or the PostgreSQL target a setting names."""
    if is_postgres_url(target):
        assert isinstance(target, str)
        if not urlsplit(target).netloc and "host=" not in target:
            raise StoreError(f"{mask_url(target)} names no server: postgresql://user@host/db")
        return PostgresTarget(target)
    text = str(target)
    if "://" in text:
        raise StoreError(
            f"{mask_url(text)} is neither a file path nor a postgresql:// URL: "
            "set WORKBENCH_DB to a DuckDB file or postgresql://user@host:5432/workbench"
        )
    return Path(text)
