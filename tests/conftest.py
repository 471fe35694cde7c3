"""Shared test fixtures. Package-specific fixtures live beside their tests."""
