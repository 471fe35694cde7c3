"""The API role's risk readers: built from the settings (sink ranges checked), both
threads run while the role runs and are gone once it stops."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from ztsim.errors import InvalidInput
from ztsim.node.risk import SINK_ANSWER_BYTES, risk_role
from ztsim.sealing import Sealer


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_the_role_runs_the_watcher_and_the_notifier_until_stopped(
    engine: Engine, sealer: Sealer
) -> None:
    role = risk_role(engine, sealer, ["127.0.0.0/8"])
    before = _threads()
    role.start()
    try:
        running = _threads() - before
        assert len(running) == 2, running
        assert any("notifier" in name for name in running)
    finally:
        role.stop()
    assert not (_threads() - before)


def test_sinks_reach_only_the_ranges_an_admin_opened(engine: Engine, sealer: Sealer) -> None:
    client = risk_role(engine, sealer, ["10.9.0.0/16"]).notifier._client
    assert [str(n) for n in client.allowed] == ["10.9.0.0/16"]
    assert client.max_bytes == SINK_ANSWER_BYTES
    assert risk_role(engine, sealer, []).notifier._client.allowed == ()


def test_a_malformed_range_is_refused_at_start(engine: Engine, sealer: Sealer) -> None:
    with pytest.raises(InvalidInput):
        risk_role(engine, sealer, ["10.9.0.0/33"])
