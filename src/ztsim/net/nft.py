"""The I/O edge to the kernel's nftables and conntrack: separate processes, never a library.

`nft -j -f -` reads a JSON batch on stdin and commits it as one transaction; running it
as its own process keeps libnftables (GPL) out of ztsim's. `prefix` is put before every
command, so tests (and a gateway living in a namespace) run them under
`ip netns exec NAME`. Failures of any kind (a missing tool, a refused batch, a timeout)
come back as `NftError` with the tool's own message; the caller decides what to do.

Flows are cut two ways: `cut_flows` runs `conntrack -D` (two processes for one
address), `cut_flows_of` cuts many addresses' flows over one netlink socket opened in
the namespace the prefix enters (`ztsim.net.ctdelete`; one process, to find that
namespace): what a revocation round uses, since a policy edit can move thousands.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ztsim.errors import ZtsimError
from ztsim.net.ctdelete import delete_flows
from ztsim.net.ctnetlink import ConntrackError
from ztsim.net.netns import in_namespace_of
from ztsim.net.nft_names import FAMILY, TABLE

_SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"
_MESSAGE = 2_000  # characters of a tool's message kept: a refused batch can echo a lot
_DELETED = re.compile(r"(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted")


class NftError(ZtsimError):
    """nft or conntrack failed: missing, refused the input, or did not finish in time."""


def _tool(name: str) -> str:
    return shutil.which(name) or shutil.which(name, path=_SBIN) or name


@dataclass(frozen=True, slots=True)
class Nft:
    """Runs nft and conntrack, each call bounded by `timeout` seconds."""

    prefix: tuple[str, ...] = ()
    timeout: float = 5.0
    nft: str = ""
    conntrack: str = ""

    def _run(
        self, argv: Sequence[str], stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [*self.prefix, *argv]
        try:
            # argv is ours (a tool path and fixed flags; addresses are parsed first): no shell.
            return subprocess.run(  # noqa: S603
                command,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise NftError(f"{argv[0]} did not finish within {self.timeout} s") from None
        except OSError as exc:
            raise NftError(f"{argv[0]} could not be started: {exc.strerror}") from None

    def apply(self, document: Mapping[str, Any]) -> None:
        """Commit one batch (`nft_documents.batch(...)`): all of it, or nothing and NftError."""
        done = self._run([self.nft or _tool("nft"), "-j", "-f", "-"], json.dumps(document))
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip()[:_MESSAGE]
            raise NftError(f"nft refused the batch: {message or f'exit status {done.returncode}'}")

    def table(self) -> dict[str, Any]:
        """`nft -j list table inet ztsim`, parsed; NftError when there is no such table."""
        done = self._run([self.nft or _tool("nft"), "-j", "list", "table", FAMILY, TABLE])
        if done.returncode != 0:
            message = done.stderr.strip()[:_MESSAGE]
            raise NftError(f"nft could not list table {FAMILY} {TABLE}: {message}")
        try:
            parsed = json.loads(done.stdout)
        except ValueError:
            raise NftError("nft listed something that is not JSON") from None
        if not isinstance(parsed, dict):
            raise NftError("nft listed something that is not a JSON object")
        return parsed

    def cut_flows(self, address: str) -> int:
        """Delete the conntrack entries from and to `address`, so its established flows meet
        the ruleset again (as new) and stop if it now denies them; the number deleted."""
        ip = ipaddress.ip_address(address)
        family = "ipv4" if ip.version == 4 else "ipv6"
        deleted = 0
        for direction in ("-s", "-d"):
            argv = [self.conntrack or _tool("conntrack"), "-D", "-f", family, direction, str(ip)]
            done = self._run(argv)
            found = _DELETED.search(done.stderr)
            # conntrack exits 1 when nothing matched: that is not a failure here.
            if found is None or done.returncode not in (0, 1):
                message = done.stderr.strip()[:_MESSAGE]
                raise NftError(f"conntrack could not delete flows of {ip}: {message}")
            deleted += int(found.group(1))
        return deleted

    def cut_flows_of(self, addresses: Collection[str]) -> int:
        """`cut_flows` for every address at once, in the namespace the prefix enters
        (entering it, then the kernel's answers, each bounded by `timeout`); the number
        of entries deleted. NftError if an address
        is not one, the namespace cannot be entered, or the kernel refuses or is silent
        (entries deleted before the failure stay deleted: cutting again is harmless)."""
        if not addresses:
            return 0
        try:
            return in_namespace_of(
                self.prefix, lambda: delete_flows(addresses, timeout=self.timeout), self.timeout
            )
        except ConntrackError as exc:
            raise NftError(f"the flows of {len(addresses)} addresses were not cut: {exc}") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise NftError(
                f"the flows of {len(addresses)} addresses were not cut: {reason}"
            ) from None


def elements_of(listing: Mapping[str, Any], name: str) -> list[Any]:
    """The elements of set or map `name` in a `table()` listing (none: an empty list)."""
    for item in listing.get("nftables", []):
        for kind in ("map", "set"):
            body = item.get(kind) if isinstance(item, dict) else None
            if isinstance(body, dict) and body.get("name") == name:
                elements = body.get("elem", [])
                return list(elements) if isinstance(elements, list) else []
    return []
