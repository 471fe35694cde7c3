"""Orgs (tenants), identities (users and service identities), groups, fleets, tokens, roles."""
