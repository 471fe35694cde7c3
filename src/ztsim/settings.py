"""Typed settings. Read once, in the composition root (`ztsim.node`), never elsewhere.

Sources, most specific first: `ZTSIM_*` environment variables, then a TOML file
(`--config`), then the defaults below. A TOML key is a setting's name as below (the
variable's name without `ZTSIM_`, lower case), at the top level of the file.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_origin

from pydantic import Field, IPvAnyNetwork, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from ztsim.errors import InvalidInput

ENV_PREFIX = "ZTSIM_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    data_dir: Path = Path("ztsim-data")
    # Empty means the embedded default: SQLite (WAL) in the data directory.
    database_url: str = ""
    # 32 bytes as hex or URL-safe base64; when empty a 0600 key file in the data
    # directory is created on first run.
    master_key: SecretStr | None = None
    # During a rotation of ZTSIM_MASTER_KEY: the key before it, which opens what it sealed
    # but never seals (README: "Rotating the master key").
    master_key_previous: SecretStr | None = None
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)
    # Proxies whose X-Forwarded-For is believed (CIDRs); from anyone else it is ignored.
    api_trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # Seconds a client has to send a request's headers before its connection is closed.
    api_header_timeout: float = Field(default=10.0, gt=0, le=300)
    api_max_connections_per_client: int = Field(default=64, ge=1, le=100_000)
    api_max_connections: int = Field(default=2048, ge=1, le=1_000_000)
    # JSON request bodies; larger ones are refused (413) while they stream in.
    api_body_limit: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Failed authentications per client address and minute before 429; 0 turns it off.
    api_auth_failures_per_minute: int = Field(default=10, ge=0, le=100_000)
    # eSIM activation codes (SGP.22 §4.1): the SM-DP+ that serves the profiles, its OID.
    esim_smdp_address: str = "smdp.example.test"
    esim_smdp_oid: str | None = None
    esim_order_ttl_days: int = Field(default=30, ge=1, le=3650)
    # RADIUS AAA (RFC 2865 §3: 1812 auth, RFC 2866 §3: 1813 accounting); 0 picks a free port.
    radius_host: str = "127.0.0.1"
    radius_auth_port: int = Field(default=1812, ge=0, le=65535)
    radius_acct_port: int = Field(default=1813, ge=0, le=65535)
    # The DNS gateway address handed to devices in Access-Accept (MS-Primary-DNS-Server).
    radius_dns_primary: str | None = None
    radius_dns_secondary: str | None = None
    radius_session_timeout: int = Field(default=86400, ge=0, le=2**32 - 1)
    # Accounting answered once in a journal file in the data directory (one write per
    # batch), before its commit; None: so with the embedded SQLite, not with a database
    # server (whose commit is then what the answer waits for).
    radius_acct_journal: bool | None = None
    # DNS gateway: where it listens, the upstream resolvers ("host" or "host:port", port 53
    # by default; "tls://name@host:port" for DoT; "https://host[:port]/path" for DoH), and
    # the TOML policy file (rules, lists, org DNS settings).
    dns_host: str = "127.0.0.1"
    dns_port: int = Field(default=5353, ge=1, le=65535)
    dns_upstreams: list[str] = Field(default_factory=list)
    dns_policy_file: Path | None = None
    # Seconds between checks of the policy file (database changes arrive on the change feed).
    dns_reload_interval: float = Field(default=5.0, gt=0, le=3600)
    dns_stats_interval: float = Field(default=10.0, gt=0, le=3600)  # aggregate dns.stats events
    # DNS over TLS (RFC 7858) is served on dns_tls_port when both files are set.
    dns_tls_port: int = Field(default=8853, ge=1, le=65535)
    dns_tls_cert: Path | None = None
    dns_tls_key: Path | None = None
    # DNS over HTTPS (RFC 8484, HTTP/2 only) on its own TLS port, with the same two files
    # (443 needs root or CAP_NET_BIND_SERVICE).
    dns_doh_port: int = Field(default=8443, ge=1, le=65535)
    dns_list_refresh_interval: float = Field(default=3600.0, ge=10)  # URL lists, seconds
    dns_upstream_ca: Path | None = None  # for tls:// and https:// upstreams (default: system CAs)
    # The net role (`ztsim serve net`; `ztsim up` starts it when enabled and run as root):
    # the `network` rules enforced in nftables on this host, or in the network namespace
    # `net_netns`; tunnels to the sites from the underlay address `net_underlay` (none:
    # enforcement only); denied connections answered with ICMP (`net_reject`) or dropped;
    # denied attempts read from NFLOG into the event log (`net_audit`).
    net_enabled: bool = False
    net_netns: str | None = None
    net_underlay: str | None = None
    net_reject: bool = True
    net_audit: bool = True
    # The change feed keeps a change this many seconds; a gateway further behind (stopped
    # for longer) loads a full snapshot when it returns.
    feed_retention_seconds: float = Field(default=86400.0, ge=60)
    # Prometheus metrics. The API serves /metrics to loopback clients and to these CIDRs
    # (others get 404). `serve radius` and `serve dns` (one worker) serve them on their own
    # port, "host:port" ("[v6]:port"), empty for none; `ztsim up` serves every role's on
    # the API.
    metrics_allow: list[IPvAnyNetwork] = Field(default_factory=list)
    radius_metrics_listen: str = "127.0.0.1:9812"
    dns_metrics_listen: str = "127.0.0.1:9813"
    # Address ranges outbound requests (URL lists; sinks and webhooks) may reach although
    # internal (loopback, private, link-local...): CIDR strings, none by default.
    outbound_allowed_ranges: list[str] = Field(default_factory=list)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ztsim.db').resolve()}"

    @property
    def radius_journal_dir(self) -> Path | None:
        on = self.radius_acct_journal
        if on is None:
            on = self.resolved_database_url().startswith("sqlite")
        return self.data_dir / "radius-journal" if on else None

    @property
    def key_file(self) -> Path:
        return self.data_dir / "master.key"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Environment beats the file; explicit overrides (CLI flags) beat both. A file, key or
    value that is wrong is an `InvalidInput` naming the file, key or variable (never the
    value: it may be a key or a URL with credentials)."""
    file_values = _read_file(config_file) if config_file is not None else {}
    _check_env_lists()
    try:
        env_values = Settings().model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise InvalidInput(_invalid(exc, lambda name: ENV_PREFIX + name.upper())) from None
    except PydanticSettingsError as exc:
        # Its text names the field and the source, not the value.
        raise InvalidInput(f"a {ENV_PREFIX}* environment variable: {exc}") from None
    given = {k: v for k, v in overrides.items() if v is not None}
    merged = {**file_values, **env_values, **given}

    def source(name: str) -> str:
        if name in given:
            return f"--{name.replace('_', '-')}"
        if name in env_values:
            return ENV_PREFIX + name.upper()
        return f"{name} in {config_file}"

    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise InvalidInput(_invalid(exc, source)) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        # Its text says what and where ("... (at line 3, column 9)"), never the value.
        raise InvalidInput(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read it ({exc.strerror})") from None
    for key, value in values.items():
        if key not in Settings.model_fields:
            raise InvalidInput(_unknown_key(path, key, value))
    return values


def _unknown_key(path: Path, key: str, value: object) -> str:
    text = f"{path}: unknown setting {key!r}"
    if isinstance(value, dict):
        # A [table]: settings are flat, `[dns] port = 53` is `dns_port = 53`.
        flat = [f"{key}_{sub}" for sub in value if f"{key}_{sub}" in Settings.model_fields]
        if flat:
            return f"{text}: settings are flat keys without tables, e.g. {flat[0]} = ..."
    plain = key.lower().removeprefix(ENV_PREFIX.lower())
    if plain in Settings.model_fields:
        return f"{text}: did you mean {plain!r}? (keys have no {ENV_PREFIX}, lower case)"
    close = difflib.get_close_matches(plain, Settings.model_fields, n=1)
    return f"{text}: did you mean {close[0]!r}?" if close else text


_LIST_EXAMPLES = {"dns_upstreams": '["9.9.9.9", "tls://dns.quad9.net@9.9.9.9:853"]'}


def _check_env_lists() -> None:
    """pydantic-settings reads a list from the environment as JSON, and its own error is
    a traceback that does not say so."""
    env = {k.upper(): v for k, v in os.environ.items()}
    for name, field in Settings.model_fields.items():
        variable = ENV_PREFIX + name.upper()
        if get_origin(field.annotation) is not list or variable not in env:
            continue
        try:
            parsed = json.loads(env[variable])
        except ValueError:
            parsed = None
        if not isinstance(parsed, list):
            example = _LIST_EXAMPLES.get(name, '["192.0.2.0/24"]')
            raise InvalidInput(f"{variable} must be a JSON list, e.g. '{example}' ('[]' for none)")


def _invalid(exc: ValidationError, source: Callable[[str], str]) -> str:
    """One line for every wrong value: where it came from and what is expected."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        name, *rest = [str(part) for part in error["loc"]] or ["?"]
        where = source(name) + (f" (item {rest[0]})" if rest else "")
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
