"""The DNS gateway's I/O adapters around the sans-I/O engine: `udp` (a thread that
batches datagrams), `tcp` (TCP and DoT), `doh` (RFC 8484 on the API's app), `upstream`
clients (UDP/TCP, DoT, DoH) with health checks, `gateway` (engine + upstreams),
`runner` (one serving process: sockets, the query-log writer), `follow` (its change
feed: `identities` patches the identity table, `policies` rebuilds one org's policy),
`late` (a query from a source not known yet waits for one more read of the feed) and
`workers` (N forked processes sharing the port; `share` hands them the parent's
policy). Nothing here is re-exported: import the module."""

__all__: list[str] = []
