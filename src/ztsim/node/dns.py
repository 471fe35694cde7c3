"""The DNS gateway role: alone (`ztsim serve dns [--workers N]`) or beside the API (`ztsim up`)."""

from __future__ import annotations

import asyncio
import logging
import threading

from ztsim.dns.doh import DohService
from ztsim.dns.runner import GatewayOptions, GatewayProcess, options_config
from ztsim.dns.upstream import UpstreamSpec
from ztsim.dns.workers import run
from ztsim.errors import InvalidInput
from ztsim.node.platform import Platform
from ztsim.settings import Settings

log = logging.getLogger("ztsim.node.dns")
DNS_PORT = 53  # RFC 1035 §4.2
DOT_PORT = 853  # RFC 7858 §3.1


def _upstream(text: str) -> UpstreamSpec:
    """`host`, `host:port`, `[v6]:port`, or `tls://name@host:port` for DNS over TLS."""
    if text.startswith("tls://"):
        name, at, rest = text[len("tls://") :].rpartition("@")
        plain = _plain(rest)
        if not at or not name:
            raise InvalidInput(f"DoT upstream {text!r} needs tls://<certificate name>@host:port")
        return UpstreamSpec(plain.host, plain.port if ":" in rest else DOT_PORT, name)
    return _plain(text)


def _plain(text: str) -> UpstreamSpec:
    host, sep, port = text.rpartition(":")
    if not sep or host.endswith(":") or (":" in host and not host.startswith("[")):
        return UpstreamSpec(text.strip("[]"), DNS_PORT)  # a bare IPv4/IPv6 address
    try:
        return UpstreamSpec(host.strip("[]"), int(port))
    except ValueError:
        raise InvalidInput(f"upstream {text!r} is not host or host:port") from None


def gateway_options(settings: Settings, platform: Platform | None) -> GatewayOptions:
    return GatewayOptions(
        host=settings.dns_host,
        port=settings.dns_port,
        upstreams=[_upstream(u) for u in settings.dns_upstreams],
        policy_file=settings.dns_policy_file,
        database=platform.engine if platform is not None else None,
        reload_interval=settings.dns_reload_interval,
        stats_interval=settings.dns_stats_interval,
        tls_port=settings.dns_tls_port,
        tls_cert=settings.dns_tls_cert,
        tls_key=settings.dns_tls_key,
        list_refresh_interval=settings.dns_list_refresh_interval,
        upstream_ca=settings.dns_upstream_ca,
    )


def serve_dns(platform: Platform, workers: int = 1) -> None:
    """The gateway alone, until SIGINT or SIGTERM."""
    run(gateway_options(platform.settings, platform), workers)


def start_in_thread(platform: Platform) -> DohService:
    """The gateway on its own loop in a daemon thread (for `ztsim up`); its DoH service
    is for the API app of the same process."""
    options = gateway_options(platform.settings, platform)
    process = GatewayProcess(options, options_config(options))

    service = DohService(process.gateway)

    async def main() -> None:
        service.loop = asyncio.get_running_loop()
        await process.serve()

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="dns-gateway", daemon=True)
    thread.start()
    log.info("DNS gateway starting on %s:%d", options.host, options.port)
    return service
