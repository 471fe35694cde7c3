"""The AAA role's I/O adapters around `ztsim.radius.aaa`: `server` (the UDP endpoints),
`service` (the role: its lock, the records' writer, reloads, revocation) and `coa`
(the Dynamic Authorization client of RFC 5176). Nothing here is re-exported."""

__all__: list[str] = []
