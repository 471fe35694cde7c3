"""The DNS gateway's I/O adapters around the sans-I/O engine: `udp` (a thread that
batches datagrams), `tcp` (TCP and DoT), `doh` (RFC 8484 on the API's app), `upstream`
clients (UDP/TCP, DoT, DoH) with health checks, `gateway` (engine + upstreams),
`runner` (one serving process: sockets, reloads, the query-log writer) and `workers`
(N forked processes sharing the port). Nothing here is re-exported: import the module."""

__all__: list[str] = []
