"""Build the platform from settings. The only place that reads settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from ztsim.api.app import create_app
from ztsim.api.context import ApiContext
from ztsim.clock import utc_now
from ztsim.db import schema
from ztsim.db.engine import make_engine, upgrade
from ztsim.errors import InvalidInput
from ztsim.esim.config import EsimConfig
from ztsim.events import store as events
from ztsim.events.schema import NewEvent, subject_of
from ztsim.identity import repository, token_store
from ztsim.identity.models import Org
from ztsim.identity.roles import Role
from ztsim.keys import load_sealer, rewrap_all, rotate_key_file
from ztsim.sealing import Sealer, parse_key
from ztsim.settings import Settings, load_settings

log = logging.getLogger("ztsim.node")


@dataclass(frozen=True)
class Platform:
    settings: Settings
    engine: Engine
    sealer: Sealer

    def api_context(self) -> ApiContext:
        return ApiContext(self.engine, self.sealer, utc_now, esim=esim_config(self.settings))


def esim_config(settings: Settings) -> EsimConfig:
    return EsimConfig(
        settings.esim_smdp_address,
        settings.esim_smdp_oid,
        timedelta(days=settings.esim_order_ttl_days),
    )


def build(settings: Settings, *, create_key: bool = False) -> Platform:
    """Open (and migrate) the database and load the key-encryption key."""
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    env_key = settings.master_key.get_secret_value() if settings.master_key else None
    sealer = load_sealer(settings.key_file, env_key, create=create_key)
    return Platform(settings, engine, sealer)


def init_org(platform: Platform, name: str, slug: str) -> tuple[Org, str]:
    """Create the first org and its first admin token (returned once, never stored)."""
    now = utc_now()
    with platform.engine.begin() as conn:
        org = repository.create_org(conn, name, slug, now)
        info, token = token_store.issue(
            conn,
            org.id,
            name="first admin",
            role=Role.ADMIN,
            identity_id=None,
            created_by="cli:init",
            now=now,
        )
        events.append(
            conn,
            [
                NewEvent(org.id, "org.created", "cli:init", subject_of("org", org.id)),
                NewEvent(org.id, "token.created", "cli:init", subject_of("token", info.id)),
            ],
            now,
        )
    return org, token


def has_org(platform: Platform) -> bool:
    with platform.engine.connect() as conn:
        return conn.execute(select(schema.orgs.c.id).limit(1)).first() is not None


def serve_api(platform: Platform) -> None:
    import uvicorn

    app = create_app(platform.api_context())
    log.info("API on http://%s:%d", platform.settings.api_host, platform.settings.api_port)
    uvicorn.run(
        app,
        host=platform.settings.api_host,
        port=platform.settings.api_port,
        log_level="info",
        access_log=False,
    )


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    return load_settings(config, **overrides)


def rotate_master_key(platform: Platform, new_key_file: Path | None = None) -> int:
    """Key file installs rotate in place. With ZTSIM_MASTER_KEY the new key must already
    be saved (`new_key_file`, from `ztsim keys generate`) before anything is re-sealed;
    afterwards the operator sets ZTSIM_MASTER_KEY to it."""
    if platform.settings.master_key is None:
        return rotate_key_file(platform.engine, platform.settings.key_file)
    if new_key_file is None:
        raise InvalidInput("the master key comes from ZTSIM_MASTER_KEY: pass --new-key-file")
    old = parse_key(platform.settings.master_key.get_secret_value())
    new = parse_key(new_key_file.read_text())
    return rewrap_all(platform.engine, Sealer(new, others=[old]))
