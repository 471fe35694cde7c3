"""A DoH endpoint on loopback for the upstream tests: hypercorn with TLS in a thread,
serving ztsim's own `/dns-query` route for a running gateway, or any ASGI app."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from ztsim.api import routes_doh
from ztsim.dns.serve.doh import DohService
from ztsim.dns.serve.gateway import Gateway

HYPERCORN = importlib.util.find_spec("hypercorn") is not None


def doh_app(gateway: Gateway, loop: asyncio.AbstractEventLoop) -> FastAPI:
    """The API's DoH route, answering with `gateway` (which runs on `loop`)."""
    app = FastAPI()
    app.state.doh = DohService(gateway, loop)
    app.include_router(routes_doh.router)
    return app


class DohServer:
    """`app` on https://127.0.0.1:`port` until the `with` block ends (or `stop`)."""

    def __init__(
        self, app: Any, port: int, cert: Path, key: Path, *, keep_alive: bool = True
    ) -> None:
        """`keep_alive=False`: one request per connection, so `stop` is quick while clients
        are still running (hypercorn's stop waits for their idle kept-alive connections)."""
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.certfile, config.keyfile = str(cert), str(key)
        config.loglevel = "WARNING"
        config.graceful_timeout = 0.2
        if not keep_alive:
            config.keep_alive_max_requests = 1
        self.port = port
        self._stop = threading.Event()

        async def main() -> None:
            await serve(app, config, shutdown_trigger=self._wait)

        self._thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)

    async def _wait(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(0.02)

    def __enter__(self) -> DohServer:
        self._thread.start()
        for _ in range(200):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        raise RuntimeError("hypercorn did not start")

    def stop(self) -> None:
        """Ends serving (again is a no-op): the port is free once this returns."""
        self._stop.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "hypercorn did not stop"

    def __exit__(self, *exc: object) -> None:
        self.stop()
