"""The audit log is a hash chain: an edited or deleted row in the database file is named by
`workbench audit verify`; `audit list` filters."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from workbench.cli import app
from workbench.store import Store
from workbench.store.audit import GENESIS

runner = CliRunner()


def fill(db: Path, rows: int = 5) -> None:
    with Store.open(db) as store:
        for n in range(rows):
            store.audit.append(
                actor="alice" if n % 2 else "bob",
                action="set_state",
                result="allowed" if n != 3 else "refused",
                target=f"strategy-{n}",
                before={"state": "running"},
                after={"state": "paused"},
                reason=None if n != 3 else "needs the trader role",
            )


def verify(db: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify", "--db", str(db)])
    return result.exit_code, result.output


def test_an_untouched_log_verifies_and_links_every_row(db_path: Path) -> None:
    fill(db_path)
    code, output = verify(db_path)
    assert code == 0 and "holds: 5 rows" in output
    with Store.open(db_path) as store:
        entries = store.audit.entries()
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.row_hash for e in entries[:-1]]
    assert all(e.row_hash == e.content_hash() for e in entries)


def test_an_edited_row_is_named(db_path: Path) -> None:
    fill(db_path)
    con = duckdb.connect(str(db_path))
    con.execute("UPDATE audit_log SET result = 'allowed', reason = NULL WHERE seq = 4")
    con.close()
    code, output = verify(db_path)
    assert code == 1
    assert "broken at row 4" in output and "edited" in output and "3 rows before it hold" in output


def test_a_row_rehashed_by_the_editor_still_breaks_the_next_link(db_path: Path) -> None:
    fill(db_path)
    with Store.open(db_path) as store:
        entry = store.audit.entries()[1]
    forged = entry.__class__(**{**entry.__dict__, "actor": "mallory"})
    con = duckdb.connect(str(db_path))
    con.execute(
        "UPDATE audit_log SET actor = 'mallory', row_hash = ? WHERE seq = 2",
        [forged.content_hash()],
    )
    con.close()
    code, output = verify(db_path)
    assert code == 1 and "broken at row 3" in output and "link" in output


def test_a_deleted_row_is_named(db_path: Path) -> None:
    fill(db_path)
    con = duckdb.connect(str(db_path))
    con.execute("DELETE FROM audit_log WHERE seq = 2")
    con.close()
    code, output = verify(db_path)
    assert code == 1 and "row 2 is missing before row 3" in output


def test_audit_list_filters_by_actor_and_result(db_path: Path) -> None:
    fill(db_path)
    args = ["audit", "list", "--db", str(db_path), "--json"]
    alice = json.loads(runner.invoke(app, [*args, "--actor", "alice"]).output)
    assert [r["target"] for r in alice] == ["strategy-3", "strategy-1"]
    refused = json.loads(runner.invoke(app, [*args, "--result", "refused"]).output)
    assert [(r["actor"], r["reason"]) for r in refused] == [("alice", "needs the trader role")]
    assert json.loads(refused[0]["after"]) == {"state": "paused"}
    bad = runner.invoke(app, ["audit", "list", "--db", str(db_path), "--since", "yesterday-ish"])
    assert bad.exit_code == 1 and "--since" in bad.output
