"""Orgs (tenants), identities (users and service identities), groups, fleets, tokens, roles."""

__all__: list[str] = []
