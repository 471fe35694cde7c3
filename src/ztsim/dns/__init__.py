"""ztsim's DNS gateway, in layers (each imports only the ones above it in this list):

- `wire`: the RFC 1035 / 6891 / 8914 codec and the hot path's header-and-question
  reader, block answers, the wire cache's patching and truncation. Pure.
- `policy`: rules as data, list parsers and feeds, the compact domain store, the
  compiled policy snapshot and the requester identity table. Pure (NumPy is loaded
  only while a domain store is built).
- `engine`, `answers`, `answercache`, `querylog` (this package): the sans-I/O engine,
  `Engine.handle(wire, who, now)` -> `Answer` | `Forward`, with its caches and the
  privacy-filtered query log. Pure.
- `store`: the database side (settings, rules, lists, device tokens; the gateway's
  read-only views of them and of the session table; URL list refresh).
- `serve`: the I/O adapters (UDP, TCP, DoT, DoH, upstream clients, the runner and
  its forked workers).

This package's own import loads nothing but its docstring: import the layer you use.
"""

__all__: list[str] = []
