"""Bad input on PostgreSQL: each failure gives one clear message that names the URL (password
masked) and what to do."""

from __future__ import annotations

import pytest

from workbench.settings import Settings
from workbench.store import SchemaTooNew, Store, StoreError
from workbench.store.errors import StorePermission, StoreUnavailable
from workbench.store.local_postgres import LocalPostgres, free_port
from workbench.store.target import mask_url


def test_an_unreachable_server_is_named_with_what_to_check() -> None:
    url = f"postgresql://trader:s3cret@127.0.0.1:{free_port()}/workbench"
    with pytest.raises(StoreUnavailable) as failed:
        Store.open(url)
    message = str(failed.value)
    assert "cannot reach the PostgreSQL server at postgresql://trader:***@127.0.0.1" in message
    assert "s3cret" not in message and "running and listening" in message


def test_a_wrong_password_says_so_and_never_shows_it(pg_server: LocalPostgres) -> None:
    pg_server.create_user("alice", "right")
    url = pg_server.url("postgres", "alice").replace("alice@", "alice:wrong@")
    with pytest.raises(StoreUnavailable, match="refused the login of alice") as failed:
        Store.open(url)
    assert "wrong" not in str(failed.value).replace("wrong or missing", "")
    assert "alice:***@" in str(failed.value)


def test_a_missing_database_says_how_to_create_it(pg_server: LocalPostgres) -> None:
    with pytest.raises(StoreUnavailable, match="createdb no_such_db"):
        Store.open(pg_server.url("no_such_db"))


def test_a_user_without_rights_is_told_what_to_grant(pg_server: LocalPostgres) -> None:
    pg_server.create_user("bob", "pw")
    pg_server.create_database("owned_by_postgres")
    url = pg_server.url("owned_by_postgres", "bob").replace("bob@", "bob:pw@")
    with pytest.raises(StorePermission, match="GRANT CREATE") as failed:
        Store.open(url)
    assert "bob:***@" in str(failed.value) and "user bob" in str(failed.value)


def test_a_newer_schema_names_the_url(pg_url: str) -> None:
    with Store.open(pg_url) as store:
        store.db.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'later')")
    with pytest.raises(SchemaTooNew, match="upgrade the workbench") as refused:
        Store.open(pg_url, read_only=True)
    assert pg_url in str(refused.value)


def test_a_target_that_is_neither_path_nor_url_is_refused() -> None:
    with pytest.raises(StoreError, match="neither a file path nor a postgresql:// URL"):
        Store.open("mysql://u:pw@host/db")


def test_settings_show_the_database_url_with_its_password_masked() -> None:
    shown = Settings(db="postgresql://trader:s3cret@db:5432/wb?sslmode=require").masked()
    assert shown["db"] == "postgresql://trader:***@db:5432/wb?sslmode=require"
    assert Settings(db="data/w.duckdb").masked()["db"] == "data/w.duckdb"
    assert mask_url("postgresql://db/wb?user=t&password=s3cret") == (
        "postgresql://db/wb?user=t&password=***"
    )


def test_a_newer_schema_opened_for_writing_masks_the_password_and_says_what_to_do(
    pg_server: LocalPostgres,
) -> None:
    pg_server.create_user("carol", "pw")
    url = pg_server.create_database("newer_rw", owner="carol").replace("carol@", "carol:pw@")
    with Store.open(url) as store:
        store.db.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'later')")
    with pytest.raises(SchemaTooNew, match="upgrade the workbench") as refused:
        Store.open(url)
    assert "carol:***@" in str(refused.value) and ":pw@" not in str(refused.value)


def test_a_user_who_may_not_read_the_tables_is_told_what_to_grant(
    pg_server: LocalPostgres,
) -> None:
    owned = pg_server.create_database("migrated_by_owner")
    Store.open(owned).close()  # migrated by its owner
    pg_server.create_user("dave", "pw")
    url = pg_server.url("migrated_by_owner", "dave").replace("dave@", "dave:pw@")
    with pytest.raises(StorePermission, match="GRANT") as failed:
        Store.open(url, read_only=True)
    assert "dave:***@" in str(failed.value) and "user dave" in str(failed.value)
