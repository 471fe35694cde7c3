"""The DNS gateway role: alone (`ztsim serve dns [--workers N]`) or beside the API (`ztsim up`)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import Future
from dataclasses import replace
from urllib.parse import urlsplit

from ztsim.dns.serve.doh import DohService
from ztsim.dns.serve.metrics import PUSH_SECONDS, dns_collector, host_collector
from ztsim.dns.serve.runner import GatewayOptions, GatewayProcess, options_config
from ztsim.dns.serve.upstream import UpstreamSpec
from ztsim.dns.serve.upstream_https import doh_url
from ztsim.dns.serve.workers import WorkerPool
from ztsim.errors import InvalidInput, ZtsimError
from ztsim.netguard import parse_ranges
from ztsim.node.listeners import Announce, Listener, binding, check_free, http, log_listeners
from ztsim.node.metrics import (
    HostMetrics,
    WithMetrics,
    parse_listen,
    report_every,
    serve_metrics,
)
from ztsim.node.platform import Platform
from ztsim.node.runner import on_stop_signal, run_role, stop_signals_held
from ztsim.settings import Settings

log = logging.getLogger("ztsim.node.dns")
DNS_PORT = 53  # RFC 1035 §4.2
DOT_PORT = 853  # RFC 7858 §3.1
HTTPS_PORT = 443  # RFC 9110 §4.2.2
DOH_PATH = "/dns-query"  # the path of RFC 8484's examples, which public resolvers use
DOH_TEMPLATE = "{?dns}"  # RFC 8484 §3: URI templates as resolvers publish them; POST needs none


def _upstream(text: str) -> UpstreamSpec:
    """`host`, `host:port`, `[v6]:port`, `tls://name@host:port` for DNS over TLS, or
    `https://host[:port][/path]` for DNS over HTTPS."""
    scheme, sep, _ = text.partition("://")
    if not sep:
        return _plain(text)
    if scheme.lower() == "tls":
        name, at, rest = text[len("tls://") :].rpartition("@")
        plain = _plain(rest)
        if not at or not name:
            raise InvalidInput(f"DoT upstream {text!r} needs tls://<certificate name>@host:port")
        return UpstreamSpec(plain.host, plain.port if ":" in rest else DOT_PORT, name)
    if scheme.lower() == "https":
        return _https(text)
    # Not echoed: a URL may carry credentials or a token.
    raise InvalidInput("an upstream URL must be tls:// (DoT) or https:// (DoH)")


def _https(text: str) -> UpstreamSpec:
    """A DoH upstream (RFC 8484). Errors never echo the URL: its path may be a device's
    token (`/dns-query/<token>`), and one with user:password@ is refused as such."""
    parts = urlsplit(text.removesuffix(DOH_TEMPLATE))
    if "@" in parts.netloc:
        raise InvalidInput("a DoH upstream URL must not carry credentials (user:password@)")
    if parts.query or parts.fragment or any(c.isspace() for c in text):
        raise InvalidInput("a DoH upstream URL is https://host[:port]/path: no ?, # or spaces")
    try:
        port = HTTPS_PORT if parts.port is None else parts.port
    except ValueError:
        port = 0
    if not 0 < port < 0x10000:
        raise InvalidInput("a DoH upstream URL's port is not a number from 1 to 65535")
    if not parts.hostname:
        raise InvalidInput("a DoH upstream URL needs a host: https://host[:port]/path")
    path = parts.path or DOH_PATH
    doh_url(parts.hostname, port, path)  # InvalidInput if httpx cannot make a URL of it
    return UpstreamSpec(parts.hostname, port, https_path=path)


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
        doh_port=settings.dns_doh_port,
        list_refresh_interval=settings.dns_list_refresh_interval,
        outbound_allowed=parse_ranges(settings.outbound_allowed_ranges),
        upstream_ca=settings.dns_upstream_ca,
    )


def dns_listeners(options: GatewayOptions) -> list[Listener]:
    host = options.host
    found = [Listener("DNS", host, options.port, "udp"), Listener("DNS", host, options.port, "tcp")]
    if options.tls_cert is not None and options.tls_key is not None:
        found.append(Listener("DoT", host, options.tls_port, "tcp"))
        shown = f"[{host}]" if ":" in host else host
        url = f"https://{shown}:{options.doh_port}{DOH_PATH}"
        found.append(Listener("DoH", host, options.doh_port, "tcp", url))
    return found


def serve_dns(platform: Platform, workers: int = 1, announce: Announce = log_listeners) -> None:
    """The gateway alone, until SIGINT or SIGTERM; with `workers` > 1, in that many forked
    processes sharing the port (their metrics merged by the parent). Metrics on
    `dns_metrics_listen`. `announce` is told what it listens on once it serves."""
    options = gateway_options(platform.settings, platform)
    metrics_at = parse_listen(platform.settings.dns_metrics_listen)
    if workers <= 1:
        process = GatewayProcess(options, options_config(options))
        _serve_one(process, reuse_port=False, metrics_at=metrics_at, announce=announce)
        return
    # A worker that cannot bind ends on its own, unseen by the parent: check first.
    check_free(dns_listeners(options), reuse_port=True)
    pool = WorkerPool(options)
    # Held until every child exists: a stop is then forwarded to all of them.
    with stop_signals_held():
        on_stop_signal(pool.stop)
        pool.fork(workers, lambda process, refresher: _serve_one(process, True, refresher))
    metrics = HostMetrics()
    listening = dns_listeners(options)
    if metrics_at is not None:
        metrics.start(metrics_at, host_collector(pool), "DNS")
        listening.append(http("DNS metrics", *metrics_at, "/metrics"))
    announce(listening)
    try:
        pool.supervise()
    finally:
        metrics.stop()


def _serve_one(
    process: GatewayProcess,
    reuse_port: bool,
    refresher: bool = True,
    metrics_at: tuple[str, int] | None = None,
    announce: Announce = log_listeners,
) -> None:
    async def start() -> WithMetrics:
        with binding(dns_listeners(process.options), reuse_port=reuse_port):
            await process.start(reuse_port=reuse_port, refresher=refresher)
        collector = dns_collector(process)
        if process.feed.is_relayed:  # a worker: its parent serves the host's metrics
            report = report_every(PUSH_SECONDS, collector, process.feed.report_metrics)
            return WithMetrics(process, None, asyncio.create_task(report))
        try:
            listener = await serve_metrics(metrics_at, collector, "DNS")
        except BaseException:
            await process.stop()
            raise
        listening = dns_listeners(process.options)
        if listener is not None and metrics_at is not None:
            listening.append(http("DNS metrics", metrics_at[0], listener.port, "/metrics"))
        announce(listening)
        return WithMetrics(process, listener)

    if not reuse_port:
        asyncio.run(run_role(start))
        return
    try:
        asyncio.run(run_role(start))
    except ZtsimError as exc:
        # A worker: its parent checked the ports before forking, so this is a race lost.
        log.error("DNS worker %d not started: %s", os.getpid(), exc)


async def start_in_thread(
    platform: Platform, pseudonym_key: bytes | None = None
) -> tuple[DohService, GatewayProcess]:
    """The gateway on its own loop in a daemon thread (for `ztsim up`), returned once it
    serves (or its start's error raised); its DoH service is for the API app of the same
    process, and the process for its metrics. `pseudonym_key`: shared with the net role
    of the same process, so that one person has one pseudonym in both planes' events."""
    options = gateway_options(platform.settings, platform)
    if pseudonym_key is not None:
        options = replace(options, pseudonym_key=pseudonym_key)
    process = GatewayProcess(options, options_config(options))
    service = DohService(process.gateway)
    started: Future[None] = Future()

    async def main() -> None:
        service.loop = asyncio.get_running_loop()
        try:
            with binding(dns_listeners(options)):
                await process.start()
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        try:
            await asyncio.Event().wait()  # until the process ends: the thread is a daemon
        finally:
            await process.stop()

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="dns-gateway", daemon=True)
    thread.start()
    await asyncio.wrap_future(started)
    return service, process
