"""Security costs: an argon2 login check, unlocking the key file, an audit row written and
verified, and a read through the locked-down read service next to a direct read.

Run: .venv/bin/python benchmarks/bench_security.py [--rows N]
Prints per-item costs, and the read service's cost as a ratio to a direct read in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from workbench.auth.keys import ExchangeKeys, KeyFile
from workbench.auth.passwords import hash_password, verify_password
from workbench.store import Store
from workbench.store.sharing import ReadServer, query_owner


def per_item(label: str, count: int, action: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(count):
        action()
    seconds = (time.perf_counter() - started) / count
    print(f"{label:<52} {seconds * 1000:10.3f} ms")
    return seconds


async def reads(folder: Path, rows: int, count: int) -> None:
    db = folder / "reads.duckdb"
    store = Store.open(db)
    store.con.execute(
        "INSERT INTO equity SELECT 's', make_timestamp(i * 60000000), 1, 1, 0, 1 "
        f"FROM range({rows}) t(i)"
    )
    sql = "SELECT count(*), avg(equity) FROM equity WHERE ts >= make_timestamp(0)"
    server = await ReadServer(store).start()
    try:
        cursor = store.con.cursor()
        direct = per_item(
            f"direct read ({rows:,} rows scanned)", count, lambda: cursor.execute(sql).fetchall()
        )
        served = await asyncio.to_thread(
            per_item, "the same through the read service", count, lambda: query_owner(sql, db=db)
        )
        print(f"{'read service / direct':<52} {served / direct:10.1f} x")
    finally:
        await server.stop()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    stored = hash_password("a benchmark password")
    per_item("argon2id hash (default parameters)", 10, lambda: hash_password("a new password!"))
    per_item("argon2id verify: one login check", 10, lambda: verify_password(stored, "wrong pw"))
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        keyfile = KeyFile(folder / "keys.json")
        pair = ExchangeKeys(SecretStr("k" * 64), SecretStr("s" * 64))
        keyfile.set("binance", pair, "a passphrase here")
        per_item(
            "unlock one exchange's keys (scrypt + AES-GCM)",
            10,
            lambda: keyfile.get("binance", "a passphrase here"),
        )
        with Store.open(folder / "audit.duckdb") as store:
            per_item(
                "append one audit row (hash chained)",
                500,
                lambda: store.audit.append(
                    actor="bench",
                    action="set_state",
                    result="allowed",
                    target="s",
                    before={"state": "running"},
                    after={"state": "paused"},
                ),
            )
            seconds = per_item("verify the whole chain (500 rows)", 5, store.audit.verify)
            print(f"{'  per row':<52} {seconds / 500 * 1e6:10.1f} µs")
        asyncio.run(reads(folder, args.rows, 50))


if __name__ == "__main__":
    main()
