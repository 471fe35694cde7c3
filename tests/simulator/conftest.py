"""The demo's site for the tests that need it (`test_simulator_demo_site`,
`test_simulator_demo_intranet`): opened fresh for each test and always closed, and then
none of this process's demo namespaces may be left."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ztsim.simulator.demo_site import DemoSite

from support.demo_namespaces import ours


@pytest.fixture
def site() -> Iterator[DemoSite]:
    made = DemoSite().open()
    try:
        yield made
    finally:
        made.close()
    assert ours() == []
