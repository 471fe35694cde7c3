"""Private connectivity (issue 20): sites and their networks, the Geneve tunnel with the
subject's identity option, and network rules enforced in nftables. Pure values at the
top level; `store/` is the database side."""

__all__: list[str] = []
