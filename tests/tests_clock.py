"""A fixed time for tests whose records need one."""

from datetime import UTC, datetime

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
