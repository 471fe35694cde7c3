"""Build the platform from settings. The only place that reads settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, select

from ztsim.api.app import create_app
from ztsim.api.context import ApiContext
from ztsim.api.edge import HttpEdge
from ztsim.api.limits import BodyLimits
from ztsim.api.server import ServeOptions, server_config
from ztsim.clock import utc_now
from ztsim.db import schema
from ztsim.db.engine import make_engine, upgrade
from ztsim.dns.serve.doh import DohService
from ztsim.errors import InvalidInput
from ztsim.esim.config import EsimConfig
from ztsim.events import store as events
from ztsim.events.schema import NewEvent, subject_of
from ztsim.identity import repository, token_store
from ztsim.identity.models import Org
from ztsim.identity.roles import Role
from ztsim.keys import load_sealer, rewrap_all, rotate_key_file
from ztsim.metrics.registry import Registry
from ztsim.node.retention import Pruner
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


def private_data_dir(data_dir: Path) -> None:
    """The data directory holds the database (IMSIs, IMEIs, locations, names) and the
    key file: its owner's only. Created 0700; an existing one is tightened."""
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True)
        return
    mode = data_dir.stat().st_mode & 0o777
    if mode & 0o077:
        data_dir.chmod(mode & 0o700)
        log.warning("data directory %s was mode %o; now %o", data_dir, mode, mode & 0o700)


def build(settings: Settings, *, create_key: bool = False) -> Platform:
    """Open (and migrate) the database and load the key-encryption key."""
    uses_data_dir = not settings.database_url or settings.master_key is None
    if uses_data_dir or settings.data_dir.exists():
        private_data_dir(settings.data_dir)
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


def http_edge(settings: Settings) -> HttpEdge:
    return HttpEdge(
        limits=BodyLimits(json=settings.api_body_limit),
        trusted_proxies=tuple(settings.api_trusted_proxies),
        auth_failures_per_minute=settings.api_auth_failures_per_minute or None,
    )


def api_app(
    platform: Platform,
    ctx: ApiContext,
    doh: DohService | None = None,
    metrics: Registry | None = None,
) -> FastAPI:
    """`metrics`: the other roles of this process, served with the API's on `/metrics`."""
    return create_app(
        ctx,
        doh,
        http_edge(platform.settings),
        metrics=metrics,
        metrics_allow=platform.settings.metrics_allow,
    )


def api_server(platform: Platform, app: FastAPI, *, log_level: str) -> uvicorn.Server:
    """The one place the API server is configured (`ztsim up` and `ztsim serve api`)."""
    s = platform.settings
    options = ServeOptions(
        host=s.api_host,
        port=s.api_port,
        header_timeout=s.api_header_timeout,
        max_connections_per_client=s.api_max_connections_per_client,
        max_connections=s.api_max_connections,
        trusted_proxies=tuple(s.api_trusted_proxies),
        log_level=log_level,
    )
    return uvicorn.Server(server_config(app, options))


def feed_pruner(platform: Platform) -> Pruner:
    """The API role prunes the change feed (see `ztsim.node.retention`)."""
    keep = timedelta(seconds=platform.settings.feed_retention_seconds)
    return Pruner(platform.engine, keep)


def serve_api(platform: Platform) -> None:
    server = api_server(platform, api_app(platform, platform.api_context()), log_level="info")
    log.info("API on http://%s:%d", platform.settings.api_host, platform.settings.api_port)
    pruner = feed_pruner(platform)
    pruner.start()
    try:
        server.run()
    finally:
        pruner.stop()


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
