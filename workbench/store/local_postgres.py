"""A throwaway PostgreSQL server from Debian's binaries, for tests and benchmarks.

`initdb` refuses to run as root, so as root the cluster is made and run by the `postgres`
user (`runuser`), in a directory of its own under the system temp folder. It listens on
127.0.0.1 on a free port, trusts local logins, and is removed on `stop`.

    with LocalPostgres() as server:
        url = server.create_database("workbench")  # postgresql://postgres@127.0.0.1:P/workbench
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg
from psycopg import sql

from workbench.store.errors import StoreError

SUPERUSER = "postgres"


def find_bindir() -> Path:
    """Give the folder of `initdb` and `pg_ctl` (Debian's newest, else the PATH's)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise StoreError(
        "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql "
        "(`make test` does it)"
    )


def _version(path: str) -> int:
    try:
        return int(Path(path).parts[-3])
    except ValueError:
        return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalPostgres:
    """One PostgreSQL cluster in a temporary folder, started and removed by this object."""

    def __init__(self, *, durable: bool = False) -> None:
        # durable=False trades crash safety of the *server* for speed (fsync off): right for
        # tests, whose server never outlives them; benchmarks measure the durable default.
        self.durable = durable
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
        self.port = 0
        self._options: list[str] = []
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise StoreError(f"{' '.join(args[:2])} failed: {done.stderr.strip()}\n{tail}")

    def start(self) -> Self:
        if self._as_postgres:
            shutil.chown(self.root, SUPERUSER)
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                  "--no-sync", "--no-instructions")  # fmt: skip
        # The superuser logs in without a password; every other user needs one (so a wrong
        # password can be tried).
        hba = data / "pg_hba.conf"
        hba.write_text(
            f"local all all trust\nhost all {SUPERUSER} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        if self._as_postgres:
            shutil.chown(hba, SUPERUSER)
        options = [f"-c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=200"]
        if not self.durable:
            options.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._options = options
        for _ in range(5):
            self.port = free_port()
            try:
                self.start_again()
                return self
            except StoreError:
                continue  # the port was taken meanwhile
        raise StoreError(f"the local PostgreSQL server did not start: see {self.root}/server.log")

    def start_again(self) -> None:
        """Start the cluster's server on its port (after `shut_down`)."""
        self._run("pg_ctl", "start", "-w", "-D", str(self.root / "data"), "-l",
                  str(self.root / "server.log"), "-o",
                  " ".join([f"-p {self.port}", *self._options]))  # fmt: skip

    def shut_down(self) -> None:
        """Stop the server, keeping its cluster (fast: every connection ends)."""
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.root / "data"))

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, owner: str = SUPERUSER) -> str:
        """Create an empty database; give its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(owner)
                )
            )
        return self.url(name, owner)

    def create_user(self, name: str, password: str) -> None:
        """Create a login role with a password and no other rights."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )

    def restart(self) -> None:
        """Restart the server on its port (`pg_ctl restart`, fast: every connection ends)."""
        # The log file again: without it the new server would hold pg_ctl's output open.
        self._run("pg_ctl", "restart", "-w", "-m", "fast", "-D", str(self.root / "data"),
                  "-l", str(self.root / "server.log"))  # fmt: skip

    def stop(self) -> None:
        if self.port:
            data = self.root / "data"
            with contextlib.suppress(StoreError):  # already gone: the folder goes anyway
                self._run("pg_ctl", "stop", "-D", str(data), "-m", "immediate", "-w")
            self.port = 0
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
