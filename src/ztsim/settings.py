"""Typed settings. Read once, in the composition root (`ztsim.node`), never elsewhere.

Sources, most specific first: `ZTSIM_*` environment variables, then a TOML file
(`--config`), then the defaults below.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZTSIM_", extra="forbid")

    data_dir: Path = Path("ztsim-data")
    # Empty means the embedded default: SQLite (WAL) in the data directory.
    database_url: str = ""
    # 32 bytes as hex or URL-safe base64; when empty a 0600 key file in the data
    # directory is created on first run.
    master_key: SecretStr | None = None
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)
    # eSIM activation codes (SGP.22 §4.1): the SM-DP+ that serves the profiles, its OID.
    esim_smdp_address: str = "smdp.example.test"
    esim_smdp_oid: str | None = None
    esim_order_ttl_days: int = Field(default=30, ge=1, le=3650)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ztsim.db').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "master.key"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Environment beats the file; explicit overrides (CLI flags) beat both."""
    file_values: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as handle:
            file_values = tomllib.load(handle)
    env_values = Settings().model_dump(exclude_unset=True)
    merged = {**file_values, **env_values, **{k: v for k, v in overrides.items() if v is not None}}
    return Settings(**merged)
