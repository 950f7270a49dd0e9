"""Settings: one object read from WORKBENCH_* variables and an optional TOML file.

Precedence, highest first: keyword arguments, environment (`WORKBENCH_DB`, `WORKBENCH_EXCHANGE`,
`WORKBENCH_API_KEY`, `WORKBENCH_API_SECRET`, ...), the TOML file named by `WORKBENCH_CONFIG`
(default `workbench.toml` in the working directory, when it exists), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from workbench.risk.settings import RiskSettings
from workbench.store.target import mask_url

DEFAULT_CONFIG_FILE = "workbench.toml"
# In a clone of the repository the default database sits in its data/ folder, whatever the
# working directory (the CLI, the apps and the notebooks then share one file).
_REPO_DATA = Path(__file__).resolve().parents[1] / "data"
DEFAULT_DB = (_REPO_DATA if _REPO_DATA.is_dir() else Path("data")) / "workbench.duckdb"
DEFAULT_KEY_FILE = DEFAULT_DB.with_name("exchange-keys.json")


def config_file() -> Path:
    """Give the TOML settings file in force (it may not exist)."""
    return Path(os.environ.get("WORKBENCH_CONFIG", DEFAULT_CONFIG_FILE))


class Settings(BaseSettings):
    """The effective settings of the workbench."""

    model_config = SettingsConfigDict(env_prefix="WORKBENCH_", extra="forbid")

    db: str = Field(
        str(DEFAULT_DB),
        description="DuckDB file, or a PostgreSQL URL (postgresql://user@host:5432/workbench)",
    )
    db_pool_min: int = Field(1, ge=0, description="PostgreSQL: connections a process keeps open")
    db_pool_max: int = Field(10, ge=1, description="PostgreSQL: most connections of a process")
    db_pool_timeout_s: float = Field(
        30.0, gt=0, description="PostgreSQL: seconds to wait for a free pooled connection"
    )
    db_connect_timeout_s: float = Field(
        10.0, gt=0, description="PostgreSQL: seconds to wait for the server to answer a connect"
    )
    journal_fsync: bool = Field(
        False,
        description="DuckDB: flush each journaled trading write to disk before it returns "
        "(survives a power cut, not only a killed process; costs a disk flush per write)",
    )
    exchange: str = Field("local", description="'local' (the local exchange) or a ccxt id")
    api_key: SecretStr | None = Field(None, description="exchange API key")
    api_secret: SecretStr | None = Field(None, description="exchange API secret")
    sandbox: bool = Field(False, description="use the exchange's testnet where it has one")
    local_host: str = Field("127.0.0.1", description="address of the local exchange")
    local_port: int = Field(8765, description="port of the local exchange")
    local_speed: float = Field(60.0, description="local exchange replay speed (x real time)")
    # -- operations: health, metrics, logs, alerts, backups (docs/deploy.md) --
    http_port: int | None = Field(
        None, ge=0, le=65535, description="`live run`: port of /health, /ready, /metrics"
    )
    metrics_token: SecretStr | None = Field(
        None, description="bearer token for /metrics from anywhere but this machine"
    )
    log_format: str = Field("auto", pattern="^(auto|json|text)$", description="auto|json|text")
    log_level: str = Field("INFO", description="log level (DEBUG, INFO, WARNING, ERROR)")
    log_file: Path | None = Field(None, description="JSON-lines log file, rotated by size")
    log_max_bytes: int = Field(20_000_000, ge=1024, description="log file size that rotates it")
    log_backups: int = Field(5, ge=0, description="rotated log files kept")
    alert_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="apprise URLs alerts go to (comma-separated)"
    )
    alert_dedupe_s: float = Field(600.0, ge=0, description="an alert repeated within it is held")
    alert_stale_bars: int = Field(3, ge=1, description="a feed this many bars behind alerts")
    alert_error_rate: int = Field(5, ge=1, description="errors per alert_error_window_s that alert")
    alert_error_window_s: float = Field(300.0, gt=0, description="window of alert_error_rate (s)")
    alert_summary_hour: int | None = Field(
        0, ge=0, le=23, description="UTC hour of the daily summary (unset: none)"
    )
    ready_max_feed_lag_bars: int = Field(2, ge=0, description="/ready fails past this feed lag")
    ready_max_loop_lag_s: float = Field(1.0, gt=0, description="/ready fails past this loop lag")
    backup_dir: Path = Field(DEFAULT_DB.with_name("backups"), description="where backups go")
    backup_max_age_h: float = Field(26.0, gt=0, description="doctor: newest backup older fails")
    # -- security (docs/security.md) --
    auth: bool | None = Field(
        None, description="require login (unset: on for `serve`, off for the local `demo`)"
    )
    cookie_secret: SecretStr | None = Field(
        None, description="signs the login cookies; required when auth is on"
    )
    session_ttl_s: float = Field(12 * 3600, gt=0, description="a login lasts this long (s)")
    login_max_failures: int = Field(5, ge=1, description="failed logins that lock a name/address")
    login_lockout_s: float = Field(30.0, gt=0, description="first lockout (s); doubles each time")
    login_max_lockout_s: float = Field(3600.0, gt=0, description="longest lockout (s)")
    oauth_provider: str | None = Field(
        None, description="Panel OAuth provider (github, google, generic, ...) instead of passwords"
    )
    oauth_key: str | None = Field(None, description="OAuth client id")
    oauth_secret: SecretStr | None = Field(None, description="OAuth client secret")
    oauth_encryption_key: SecretStr | None = Field(None, description="encrypts OAuth cookies")
    key_store: Literal["file", "keyring"] = Field(
        "file", description="where `keys set` keeps exchange keys: the key file or the OS keyring"
    )
    key_file: Path = Field(DEFAULT_KEY_FILE, description="encrypted exchange key file")
    keys_passphrase: SecretStr | None = Field(None, description="unlocks the key file")
    risk: RiskSettings = Field(
        default_factory=RiskSettings, description="risk limits (the [risk] table)"
    )
    read_timeout_s: float = Field(
        30.0, gt=0, description="longest query the read service runs before cancelling it (s)"
    )
    # -- research (never in the trading process) --
    research_workers: int = Field(
        1, ge=1, description="worker processes running the research app's jobs at once"
    )
    research_cluster: str | None = Field(
        None, description="Dask scheduler address for the research app's sweeps (unset: local)"
    )
    research_nice: int = Field(
        19,
        ge=0,
        le=19,
        description="CPU niceness of the research workers (19: trading always first; "
        "0 on a machine that does not trade)",
    )

    @field_validator("alert_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        # WORKBENCH_ALERT_URLS is comma-separated; the TOML file gives a list.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return init_settings, env_settings, toml

    def masked(self) -> dict[str, Any]:
        """Give the settings as plain values with secrets masked, fit to print."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                shown[name] = "**********"
            elif name == "db":
                shown[name] = mask_url(value)
            elif name == "alert_urls":  # they carry tokens: show only the service
                shown[name] = [url.split("://", 1)[0] + "://**********" for url in value]
            elif isinstance(value, Path):
                shown[name] = str(value)
            elif name == "risk":  # one row per limit, named as its variable is
                shown.update({f"risk_{limit}": v for limit, v in value.items()})
            else:
                shown[name] = value
        return shown


def load_settings(**overrides: Any) -> Settings:
    """Give the settings in force now, with keyword overrides on top."""
    return Settings(**overrides)
