"""Several processes append to one PostgreSQL audit log at once: the chain stays one chain."""

from __future__ import annotations

import subprocess
import sys

from workbench.store import Store

WRITER = """
import sys
from workbench.store import Store
with Store.open(sys.argv[1]) as store:
    for n in range(40):
        store.audit.append(actor=sys.argv[2], action="set_state", result="allowed", target=str(n))
"""


def test_processes_appending_at_once_keep_one_chain(pg_url: str) -> None:
    with Store.open(pg_url):  # migrated once, before the writers start
        pass
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, pg_url, f"p{k}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for k in range(3)
    ]
    said = [w.communicate(timeout=120)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0], said
    with Store.open(pg_url) as store:
        check = store.audit.verify()
        rows = store.audit.frame(limit=None)
    assert check.ok and check.rows == 120, check
    assert sorted(rows["actor"].value_counts().tolist()) == [40, 40, 40]
