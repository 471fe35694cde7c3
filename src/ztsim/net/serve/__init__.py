"""The net role's I/O adapters: sockets and threads around the pure engines in `ztsim.net`."""

__all__: list[str] = []
