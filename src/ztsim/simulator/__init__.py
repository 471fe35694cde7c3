"""A virtual operator: a packet gateway and devices speaking real RADIUS and DNS to
ztsim, for the demo and for load tests. Scenarios are data (YAML), deterministic
under a seed."""

__all__: list[str] = []
