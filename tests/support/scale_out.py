"""ztsim scaled out: `ztsim serve radius|dns|api` processes, each on a host of its own (a
network namespace of a `Fabric`), against one PostgreSQL database made for the run.

- The database: created (`CREATE DATABASE`) on the server of ZTSIM_TEST_DATABASE_URL,
  migrated once from here, dropped at the end (with FORCE, so a host left connected
  cannot keep it). Hosts reach it through a TCP forwarder on the bridge address (the
  server listens on the root namespace's loopback only; socat where installed, else
  tcp_forward.py), each with an `application_name` of its own, which is how
  `terminate` cuts one host's connections and no one else's.
- Each host is a process group of its own (`ztsim serve dns --workers N` forks its
  workers): `kill` ends all of it at once (SIGKILL: nothing is flushed, as when a
  machine dies); `stop` asks politely (SIGTERM) first.
- A host's output goes to a log file in the run's directory (`logs`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from ztsim.db.engine import make_engine, upgrade

from support.netns_hosts import Fabric, Host

FORWARDER = Path(__file__).with_name("tcp_forward.py")  # where socat is not installed
SOCAT = shutil.which("socat")
PG_PORT = 5432
DNS_PORT = 53
API_PORT = 8080


@dataclass
class RunDatabase:
    """One database on the server of `admin_url`, for one run."""

    admin_url: str
    # The creating process's id in the name: a run killed outright is cleaned up by the next.
    name: str = field(default_factory=lambda: f"ztsim_scale_{os.getpid()}_{secrets.token_hex(3)}")
    _admin: Engine | None = None

    def create(self) -> None:
        self._admin = make_engine(self.admin_url).execution_options(isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            stale = conn.execute(
                text("SELECT datname FROM pg_database WHERE datname LIKE 'ztsim_scale_%'")
            ).scalars()
            for name in list(stale):
                pid = name.split("_")[2]
                if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        engine = make_engine(self.url())
        try:
            upgrade(engine)
        finally:
            engine.dispose()

    def url(
        self, host: str | None = None, port: int | None = None, application_name: str = ""
    ) -> str:
        """The run's database, reached at host:port (default: the admin URL's)."""
        url = make_url(self.admin_url).set(database=self.name)
        if host is not None:
            url = url.set(host=host, port=port or PG_PORT)
        if application_name:
            url = url.update_query_dict({"application_name": application_name})
        return url.render_as_string(hide_password=False)

    def terminate(self, application_name: str) -> int:
        """End every server connection of this database with that application name."""
        assert self._admin is not None
        with self._admin.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND application_name = :app"
                ),
                {"db": self.name, "app": application_name},
            ).all()
        return len(rows)

    def connections(self, application_name: str) -> int:
        assert self._admin is not None
        with self._admin.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = :db AND application_name = :app"
                    ),
                    {"db": self.name, "app": application_name},
                ).scalar_one()
            )

    def drop(self) -> None:
        if self._admin is None:
            return
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()
        self._admin = None


@dataclass
class HostProcess:
    """One `ztsim serve <role>` on one host."""

    host: Host
    role: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    application_name: str
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # time.monotonic() of the last start

    @property
    def address(self) -> str:
        return self.host.address

    def start(self) -> HostProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log.open("ab") as out:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                self.host.command(self.argv),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: workers included in `kill`
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole host (its workers too), as when a machine dies."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (an orderly stop), then SIGKILL to whatever of the group is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def cpu_seconds(self) -> float:
        """CPU time (user and system) its process group has used so far: the host's own
        process and its workers (Linux /proc)."""
        return 0.0 if self.proc is None else group_cpu_seconds(self.proc.pid)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def pid_cpu_seconds(pid: int) -> float:
    """CPU seconds one live process has used so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int, name: str | None = None) -> float:
    """CPU seconds of the live processes of group `pgid` (or, with `name`, of every
    process of that command name, pgid ignored)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                head, _, rest = stat.read().rpartition(")")
        except OSError:
            continue  # ended meanwhile
        fields = rest.split()
        comm = head.partition("(")[2]
        if (name is not None and comm == name) or (name is None and int(fields[2]) == pgid):
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    # The run's settings only: a ZTSIM_* of the caller's environment would leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZTSIM_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Cluster:
    """A fabric, the database forwarder, the run's database and the hosts' processes."""

    admin_url: str
    workdir: Path
    master_key: str = field(default_factory=lambda: secrets.token_hex(32))
    fabric: Fabric = field(default_factory=Fabric)
    database: RunDatabase | None = None
    processes: dict[str, HostProcess] = field(default_factory=dict)
    ue_prefixes: list[tuple[str, Host]] = field(default_factory=list)
    _forwarder: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Cluster:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        self.fabric.open()
        listen, target = f"{self.fabric.gateway}:{PG_PORT}", self._server_address()
        if SOCAT is not None:
            # In C, a process per connection: relaying every host's queries costs the
            # machine less than Python would (the benchmark's figures include it).
            host, port = listen.rsplit(":", 1)
            argv = [
                SOCAT,
                f"TCP-LISTEN:{port},bind={host},reuseaddr,fork,nodelay",
                f"TCP:{target},nodelay",
            ]
        else:
            argv = [sys.executable, str(FORWARDER), listen, target]
        self._forwarder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_until(
            lambda: _accepts(self.fabric.gateway, PG_PORT) or self._forwarder_died(),
            10,
            what="the database forwarder listening",
        )
        if self._forwarder_died():
            raise RuntimeError("the database forwarder did not start")
        self.database = RunDatabase(self.admin_url)
        self.database.create()

    def relay_cpu(self) -> float:
        """CPU seconds the database relay (and its children) used so far."""
        return 0.0 if self._forwarder is None else group_cpu_seconds(self._forwarder.pid)

    def _forwarder_died(self) -> bool:
        return self._forwarder is None or self._forwarder.poll() is not None

    def _server_address(self) -> str:
        url = make_url(self.admin_url)
        return f"{url.host or '127.0.0.1'}:{url.port or PG_PORT}"

    def engine(self) -> Engine:
        """The run's database from this (the root) namespace."""
        assert self.database is not None
        return make_engine(self.database.url())

    # -- hosts --------------------------------------------------------------------------

    def add_host(self, name: str, number: int) -> Host:
        host = self.fabric.add_host(name, number)
        for prefix, via in self.ue_prefixes:
            self.fabric.route(host, prefix, via)
        return host

    def add_packet_gateway(self, name: str, number: int, ue_prefix: str) -> Host:
        """A host that owns every address of `ue_prefix` (its devices); every other host,
        present or added later, routes the prefix to it."""
        gateway = self.fabric.add_host(name, number)
        self.fabric.local_prefix(gateway, ue_prefix)
        for host in self.fabric.hosts.values():
            if host is not gateway:
                self.fabric.route(host, ue_prefix, gateway)
        self.ue_prefixes.append((ue_prefix, gateway))
        return gateway

    def add_role(
        self,
        role: str,
        name: str,
        number: int,
        *,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> HostProcess:
        """A host running `ztsim serve <role> [args]` (not started yet)."""
        assert self.database is not None
        host = self.add_host(name, number)
        application_name = f"{self.fabric.tag}-{name}"
        data_dir = self.workdir / name
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        settings = {
            "ZTSIM_DATABASE_URL": self.database.url(self.fabric.gateway, PG_PORT, application_name),
            "ZTSIM_MASTER_KEY": self.master_key,
            "ZTSIM_DATA_DIR": str(data_dir),
            **_role_settings(role, host.address),
            **(env or {}),
        }
        process = HostProcess(
            host,
            role,
            [sys.executable, "-m", "ztsim", "serve", role, *args],
            _child_env(settings),
            self.workdir / f"{name}.log",
            application_name,
        )
        self.processes[name] = process
        return process

    def terminate_connections(self, name: str) -> int:
        assert self.database is not None
        return self.database.terminate(self.processes[name].application_name)

    def close(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(Exception):
                process.stop(timeout=10)
        if self._forwarder is not None:
            # The group: socat's children, one per connection, too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._forwarder.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._forwarder.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._forwarder.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._forwarder.wait(timeout=5)
            self._forwarder = None
        if self.database is not None:
            with contextlib.suppress(Exception):
                self.database.drop()
        self.fabric.close()


def _role_settings(role: str, address: str) -> dict[str, str]:
    if role == "radius":
        return {"ZTSIM_RADIUS_HOST": address}
    if role == "dns":
        return {"ZTSIM_DNS_HOST": address, "ZTSIM_DNS_PORT": str(DNS_PORT)}
    if role == "api":
        return {"ZTSIM_API_HOST": address, "ZTSIM_API_PORT": str(API_PORT)}
    raise ValueError(f"unknown role {role!r}")


def wait_until(
    check: Callable[[], bool], timeout: float, *, every: float = 0.05, what: str = "a condition"
) -> float:
    """Poll `check` until it holds; the seconds it took. TimeoutError past `timeout`."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} did not hold within {timeout:.1f} s")
        time.sleep(every)


def wait_serving(process: HostProcess, probe: Callable[[], bool], timeout: float = 60.0) -> float:
    """Seconds from the process's start until `probe` succeeds; fails fast (with its
    output) if the process ends first."""

    def ready() -> bool:
        if not process.running:
            raise RuntimeError(
                f"{process.role} on {process.host.name} ended:\n{process.output()[-3000:]}"
            )
        return probe()

    try:
        wait_until(ready, timeout, what=f"{process.role} on {process.host.name} serving")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; its output:\n{process.output()[-3000:]}") from None
    return time.monotonic() - process.started_at


def http_ok(url: str) -> bool:
    """Whether GET `url` answers 200 (False while the server is not listening yet)."""
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
