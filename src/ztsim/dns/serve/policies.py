"""Building the gateway's policy: in full once, then one org at a time as the feed says.

Sources: the policy file (orgs, lists, feeds, static entries, plain tokens), and the
database, whose orgs (settings, rules, lists, networks) override the file's per org.
A `Topic.DNS` change (key: an org id) re-reads that org only: its settings, rules and
the version of each list its rules use. A list is compiled into its domain store only
when its version is new (`compiled_lists` counts them); every other org, and every list
that did not change, is shared with the previous snapshot (`PolicySnapshot.with_orgs`).
A change of the policy file re-reads the file (its lists and feeds are compiled again;
the database's are kept).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Connection

from ztsim.dns.policy.config import GatewayConfig, load_config, source_files
from ztsim.dns.policy.identity import NetworkDefault, Requester
from ztsim.dns.policy.lists import ParsedList
from ztsim.dns.policy.liststores import CompiledFeeds, CompiledList, compile_feeds, compile_list
from ztsim.dns.policy.rules import OrgPolicy
from ztsim.dns.policy.snapshot import PolicySnapshot
from ztsim.dns.store import policy_view
from ztsim.dns.store.policy_view import StoredOrg
from ztsim.errors import ZtsimError

log = logging.getLogger("ztsim.dns")


@dataclass(frozen=True, slots=True)
class Subjects:
    """What the policy sources say about requesters: static entries, tokens, networks."""

    static: tuple[tuple[str, Requester], ...] = ()
    tokens: tuple[tuple[str, Requester], ...] = ()
    defaults: tuple[NetworkDefault, ...] = ()


def file_stamps(path: Path | None) -> tuple[float, ...]:
    """Modification times of the policy file and the list and feed files it names."""
    stamps = []
    for source in source_files(path) if path is not None else ():
        try:
            stamps.append(source.stat().st_mtime)
        except OSError:
            stamps.append(0.0)
    return tuple(stamps)


class PolicyBuilder:
    def __init__(
        self,
        policy_file: Path | None,
        store_key: Callable[[], bytes],
        config: GatewayConfig | None = None,
    ) -> None:
        """`config`: the policy file, read already (its first reading)."""
        self.policy_file = policy_file
        self._first = config
        self.store_key = store_key
        self.compiled_lists = 0  # lists compiled into stores so far (feeds included)
        self.snapshot: PolicySnapshot | None = None
        self.subjects = Subjects()
        self._lock = threading.Lock()
        self._stamps: tuple[float, ...] = ()
        self._readings = 0
        # What the policy file says, its parsed lists dropped once compiled (1M names as
        # Python strings weigh far more than their store).
        self._file_orgs: dict[str, OrgPolicy] = {}
        self._file_subjects = Subjects()
        self._file_lists: dict[str, CompiledList] = {}
        self._feeds = CompiledFeeds()
        self._orgs: dict[str, StoredOrg] = {}  # the database's orgs
        self._stored: dict[str, CompiledList] = {}  # the database's lists, by version key

    # -- sources -------------------------------------------------------------------------

    def file_changed(self) -> bool:
        return self.policy_file is not None and file_stamps(self.policy_file) != self._stamps

    def _read_file(self) -> None:
        stamps = file_stamps(self.policy_file)  # before reading: a later write is seen next
        config, self._first = self._first, None
        if config is None and self.policy_file is not None:
            config = load_config(self.policy_file)
        lists: dict[str, CompiledList] = {}
        feeds = CompiledFeeds()
        if config is not None:
            # Keys name each reading of the file: the workers load its lists once per reading.
            self._readings += 1
            data, reading = config.policy, f"file:{self._readings}"
            used = sorted({n for p in data.orgs.values() for r in p.rules for n in r.lists})
            lists = {name: self._compile(data.lists[name], f"{reading}:{name}") for name in used}
            if data.feeds:
                feeds = compile_feeds(data.feeds, self.store_key(), f"{reading}:feeds")
                self.compiled_lists += 1
        self._file_orgs = dict(config.policy.orgs) if config is not None else {}
        self._file_subjects = (
            Subjects(config.static, config.tokens, config.defaults) if config else Subjects()
        )
        self._file_lists, self._feeds, self._stamps = lists, feeds, stamps

    def _compile(self, parsed: ParsedList, key: str) -> CompiledList:
        started = time.monotonic()
        compiled = compile_list(parsed, self.store_key(), key)
        self.compiled_lists += 1
        log.debug("DNS list compiled in %.2f s", time.monotonic() - started)
        return compiled

    def _stored_lists(self, conn: Connection, stored: StoredOrg) -> dict[str, CompiledList]:
        out = {}
        for version in stored.lists:
            compiled = self._stored.get(version.key)
            if compiled is None:
                compiled = self._compile(policy_view.read_list(conn, version), version.key)
                self._stored[version.key] = compiled
            out[version.name] = compiled
        return out

    # -- snapshots -----------------------------------------------------------------------

    def load_all(self, conn: Connection | None) -> tuple[PolicySnapshot, Subjects]:
        """The policy file (read again) and every org of the database (`conn`), in full;
        lists whose version was compiled before are kept."""
        with self._lock:
            self._read_file()
            self._orgs = {}
            lists: dict[str, CompiledList] = {}
            if conn is not None:
                for org_id in sorted(policy_view.org_ids(conn)):
                    stored = policy_view.read_org(conn, org_id)
                    if stored is not None:
                        lists.update(self._stored_lists(conn, stored))
                        self._orgs[org_id] = stored
            return self._assemble()

    def reload_file(self) -> tuple[PolicySnapshot, Subjects]:
        """After the policy file changed: read it again; the database's orgs are kept."""
        with self._lock:
            self._read_file()
            return self._assemble()

    def _assemble(self) -> tuple[PolicySnapshot, Subjects]:
        orgs = dict(self._file_orgs)
        orgs.update((org_id, stored.policy) for org_id, stored in self._orgs.items())
        keys = {v.key for stored in self._orgs.values() for v in stored.lists}
        self._stored = {key: c for key, c in self._stored.items() if key in keys}
        lists = dict(self._file_lists)
        for stored in self._orgs.values():
            lists.update((v.name, self._stored[v.key]) for v in stored.lists)
        self.snapshot = PolicySnapshot.assemble(orgs, lists, self._feeds)
        self.subjects = self._subjects()
        return self.snapshot, self.subjects

    def _subjects(self) -> Subjects:
        defaults = list(self._file_subjects.defaults)
        for stored in self._orgs.values():
            defaults += stored.networks
        return replace(self._file_subjects, defaults=tuple(defaults))

    def update_orgs(
        self, conn: Connection, org_ids: Iterable[str]
    ) -> tuple[PolicySnapshot, Subjects]:
        """Re-read these orgs from the database and recompile them alone. An org whose
        policy cannot be compiled keeps its last one (logged)."""
        with self._lock:
            assert self.snapshot is not None, "load_all first"
            snapshot = self.snapshot
            for org_id in sorted(set(org_ids)):
                started = time.monotonic()
                try:
                    stored = policy_view.read_org(conn, org_id)
                    lists = dict(self._file_lists)
                    policy: OrgPolicy | None = self._file_orgs.get(org_id)
                    if stored is not None:
                        lists.update(self._stored_lists(conn, stored))
                        policy = stored.policy
                    snapshot = snapshot.with_orgs({org_id: policy}, lists)
                except ZtsimError as exc:
                    log.warning("DNS policy of org %s kept as it was: %s", org_id, exc)
                    continue
                if stored is None:
                    self._orgs.pop(org_id, None)
                else:
                    self._orgs[org_id] = stored
                log.debug(
                    "DNS policy of org %s rebuilt in %.3f s", org_id, time.monotonic() - started
                )
            keys = {v.key for stored in self._orgs.values() for v in stored.lists}
            self._stored = {key: c for key, c in self._stored.items() if key in keys}
            self.snapshot = snapshot
            self.subjects = self._subjects()
            return snapshot, self.subjects
