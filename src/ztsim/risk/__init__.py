"""SIM-swap and clone defence (issue 19): number history as CAMARA defines it, the
two-person rule and cooling-off for swaps, detectors with each org's automatic response,
and the CAMARA SIM Swap, Device Swap and SIM Swap Subscriptions APIs' logic."""

__all__: list[str] = []
