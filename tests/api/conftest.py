"""API fixtures live in tests/support/world.py (shared with the API tests of other folders)."""

from support.world import ALL_ROLES, World, populate

__all__ = ["ALL_ROLES", "World", "populate"]
