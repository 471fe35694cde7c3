"""The AAA role's I/O adapters around `ztsim.radius.aaa`: `server` (the UDP endpoints),
`service` (the role: its lock, the records' writer, address blocks), `writer` (the
records' batches, and their changes published on the change feed), `following` (the
snapshot loaded with its feed position, and the feed's changes applied), `revocation`
(Disconnect-Requests for the sessions a change revokes) and `coa` (the Dynamic
Authorization client of RFC 5176). Nothing here is re-exported."""

__all__: list[str] = []
