"""The net role (`ztsim serve net`, and `ztsim up` when enabled and run as root): keeps
the kernel's nftables table `inet ztsim` equal to the live sessions and the orgs'
`network` rules (`ztsim.net.serve.role`), the gateway's tunnels equal to the sites (when
it has an `underlay` address), and writes the denied flows it logs as `net.flow` events
and, in orgs whose privacy mode is `all`, the allowed flows from conntrack's events
(`ztsim.net.serve.audit`, when `audit`).

It needs root (CAP_NET_ADMIN for nft, conntrack, ip and the NFLOG socket): `should_run`
says whether `up` starts it. `nft_prefix` runs the tools under another command, e.g.
`ip netns exec GW` for a gateway that lives in a network namespace (and for the tests);
the NFLOG socket and the Geneve endpoint are opened in the namespace that prefix enters.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from ztsim.clock import Clock, utc_now
from ztsim.errors import InvalidInput
from ztsim.metrics.feed import feed_families
from ztsim.metrics.registry import Family
from ztsim.net.nft import Nft
from ztsim.net.serve.audit import FlowAudit
from ztsim.net.serve.role import NetState
from ztsim.net.sites import endpoint_of
from ztsim.net.store.tunnel_view import SiteTunnel

MAX_TIMEOUT = 60.0  # seconds an nft or conntrack run may take at most


@dataclass(frozen=True, slots=True)
class NetSettings:
    """The role's settings: `reject` answers denied connections with ICMP administratively
    prohibited (the device's connect fails at once) rather than dropping them silently.
    `underlay`: the gateway's own address on the network towards the sites (None: no
    tunnels are made, the role only enforces). `audit`: read the deny rules' NFLOG group
    and write `net.flow` events."""

    enabled: bool = False
    reject: bool = True
    nft_prefix: tuple[str, ...] = ()
    nft_timeout: float = 5.0
    poll_seconds: float | None = None  # None: the backend's default (ztsim.feed.follower)
    listen: bool = True  # PostgreSQL NOTIFY wakes the follower
    underlay: str | None = None
    audit: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.nft_timeout <= MAX_TIMEOUT:
            raise InvalidInput(f"nft_timeout: more than 0 and at most {MAX_TIMEOUT} seconds")
        if self.poll_seconds is not None and not 0 < self.poll_seconds <= MAX_TIMEOUT:
            raise InvalidInput(f"poll_seconds: more than 0 and at most {MAX_TIMEOUT} seconds")
        if not all(isinstance(part, str) and part for part in self.nft_prefix):
            raise InvalidInput("nft_prefix: non-empty words")
        if self.underlay is not None:
            # One unicast address, as the tunnels' local end.
            try:
                address = endpoint_of(self.underlay)
            except InvalidInput as exc:
                raise InvalidInput(f"underlay: {exc}") from None
            object.__setattr__(self, "underlay", str(address))


def should_run(settings: NetSettings, euid: int | None = None) -> bool:
    """Whether `ztsim up` starts the role: enabled, and running as root."""
    return settings.enabled and (os.geteuid() if euid is None else euid) == 0


class NetRole:
    """The role's state on the feed, its tunnels and its audit, started and stopped as
    one. `pseudonym_key` keys the pseudonyms of pseudonymising orgs' flow events (give
    the DNS gateway's, so both logs name a person alike; None: one for this process)."""

    def __init__(
        self,
        engine: Engine,
        settings: NetSettings,
        clock: Clock = utc_now,
        *,
        pseudonym_key: bytes | None = None,
    ) -> None:
        self.settings = settings
        nft = Nft(prefix=settings.nft_prefix, timeout=settings.nft_timeout)
        self.state = NetState(
            engine,
            nft,
            reject=settings.reject,
            clock=clock,
            underlay=settings.underlay,
            dns_changed=self._dns_changed if settings.audit else None,
            sites_changed=self._sites_changed if settings.audit else None,
        )
        self.audit: FlowAudit | None = None
        if settings.audit:
            self.audit = FlowAudit(
                engine,
                self.state.explain_denial,
                prefix=settings.nft_prefix,
                pseudonym_key=pseudonym_key,
                clock=clock,
            )

    def _sites_changed(self, sites: Sequence[SiteTunnel]) -> None:
        if self.audit is not None:
            self.audit.sites_changed(sites)

    def _dns_changed(self, orgs: set[str]) -> None:
        if self.audit is not None:
            self.audit.privacy_changed(orgs)

    def start(self) -> None:
        """Apply the whole table and carry the sites, then follow; then listen to the
        denies. NftError (TunnelError, NflogError) if the kernel refuses; nothing is left
        running then."""
        try:
            self.state.start(poll_seconds=self.settings.poll_seconds, listen=self.settings.listen)
            if self.audit is not None:
                self.audit.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """The audit first (its last events are written), then the state and tunnels."""
        if self.audit is not None:
            self.audit.stop()
        self.state.stop()

    def wait_applied(self, seq: int, timeout: float) -> bool:
        return self.state.wait_applied(seq, timeout)

    def collect(self) -> list[Family]:
        """The role's metrics: its feed's, and the audit's."""
        s = self.state
        families = feed_families("net", s.lag_seconds(), s.position, s.connected)
        return families + (self.audit.families() if self.audit is not None else [])
