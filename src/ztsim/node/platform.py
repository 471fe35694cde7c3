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
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

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
from ztsim.esim.config import EsimConfig, smdp_placeholder_warning
from ztsim.events import store as events
from ztsim.events.schema import NewEvent, subject_of
from ztsim.heap import freeze_startup
from ztsim.identity import repository, token_store
from ztsim.identity.models import Org
from ztsim.identity.roles import Role
from ztsim.keys import load_sealer, read_key_file, rewrap_all, rotate_key_file
from ztsim.metrics.registry import Registry
from ztsim.node.listeners import Announce, bind_tcp, http, log_listeners
from ztsim.node.retention import Pruner
from ztsim.node.risk import RiskRole, risk_role
from ztsim.sealing import Sealer, parse_key
from ztsim.settings import Settings, load_settings

log = logging.getLogger("ztsim.node")
API_BACKLOG = 2048  # uvicorn's own default, kept when the socket is bound here


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


def open_database(settings: Settings) -> Engine:
    """The database, migrated. A URL that names no usable database, or a server that
    refuses, is one line naming the setting and the error's class: never the URL (it may
    carry a password) nor the driver's text."""
    where = "ZTSIM_DATABASE_URL" if settings.database_url else "the SQLite database"
    try:
        engine = make_engine(settings.resolved_database_url())
    except (ValueError, ArgumentError, NoSuchModuleError) as exc:
        raise InvalidInput(f"{where} is not a database URL ztsim can use: {_kind(exc)}") from None
    try:
        upgrade(engine)
    except DBAPIError as exc:
        engine.dispose()
        raise InvalidInput(
            f"cannot open {where} ({_kind(exc)}): is the server up, and do the host, user, "
            "password and database name in it exist?"
        ) from None
    return engine


def _kind(exc: BaseException) -> str:
    original = getattr(exc, "orig", None)
    return type(original if original is not None else exc).__name__


def build(settings: Settings, *, create_key: bool = False) -> Platform:
    """Open (and migrate) the database and load the key-encryption key."""
    uses_data_dir = not settings.database_url or settings.master_key is None
    if uses_data_dir or settings.data_dir.exists():
        private_data_dir(settings.data_dir)
    engine = open_database(settings)
    env_key = settings.master_key.get_secret_value() if settings.master_key else None
    previous = settings.master_key_previous
    sealer = load_sealer(
        settings.key_file,
        env_key,
        create=create_key,
        env_previous=previous.get_secret_value() if previous else None,
    )
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


def background_risk(platform: Platform) -> RiskRole:
    """The API role's risk readers: detectors and the CAMARA notifier (`ztsim.node.risk`)."""
    return risk_role(platform.engine, platform.sealer, platform.settings.outbound_allowed_ranges)


def serve_api(platform: Platform, announce: Announce = log_listeners) -> None:
    s = platform.settings
    api_at = http("API", s.api_host, s.api_port, "/docs")
    sock = bind_tcp(api_at, API_BACKLOG)
    server = api_server(platform, api_app(platform, platform.api_context()), log_level="info")
    port = sock.getsockname()[1]
    announce(
        [http("API", s.api_host, port, "/docs"), http("metrics", s.api_host, port, "/metrics")]
    )
    if (placeholder := smdp_placeholder_warning(s)) is not None:
        log.warning("%s", placeholder)
    pruner = feed_pruner(platform)
    pruner.start()
    risk = background_risk(platform)
    risk.start()
    # The app (routes, models, its schema's makings) is the bulk of this process's heap:
    # a full collection walked it in ~0.1 s, every request waiting (see `heap`).
    log.debug("%d start-up objects frozen", freeze_startup())
    try:
        server.run(sockets=[sock])
    finally:
        risk.stop()
        pruner.stop()
        sock.close()


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    return load_settings(config, **overrides)


def rotate_master_key(
    platform: Platform, new_key_file: Path | None = None, *, nodes_hold_new_key: bool = False
) -> int:
    """Re-seal every sealed value under the new key-encryption key; returns the rows changed.

    A key-file install makes its new key itself, and running nodes follow the file. With
    ZTSIM_MASTER_KEY a node cannot read another host's new key, so the nodes must hold it
    before anything is sealed under it: they run with ZTSIM_MASTER_KEY=new and
    ZTSIM_MASTER_KEY_PREVIOUS=old, and so does this command. `new_key_file` (the older
    form, the command's ZTSIM_MASTER_KEY still the old key) needs `nodes_hold_new_key`."""
    s = platform.settings
    if s.master_key is None:
        if new_key_file is not None:
            raise InvalidInput(
                "--new-key-file is for ZTSIM_MASTER_KEY installs: a key file rotates in place"
            )
        return rotate_key_file(platform.engine, s.key_file)
    key = parse_key(s.master_key.get_secret_value())
    previous = (
        [parse_key(s.master_key_previous.get_secret_value())] if s.master_key_previous else []
    )
    if new_key_file is None:
        if not previous:
            raise InvalidInput(
                "nothing to rotate: run every node and this command with ZTSIM_MASTER_KEY=<new>"
                " and ZTSIM_MASTER_KEY_PREVIOUS=<old> (README: Rotating the master key)"
            )
        return rewrap_all(platform.engine, Sealer(key, previous))
    if not nodes_hold_new_key:
        raise InvalidInput(
            "refusing: nodes without the new key cannot open what it seals; restart them with"
            " ZTSIM_MASTER_KEY_PREVIOUS set and run `ztsim keys rotate` without --new-key-file,"
            " or pass --nodes-hold-new-key"
        )
    try:
        new = read_key_file(new_key_file)
    except OSError as exc:
        raise InvalidInput(f"{new_key_file}: cannot read it ({exc.strerror})") from None
    return rewrap_all(platform.engine, Sealer(new, [key, *previous]))
