"""CAMARA APIs (SIM Swap, Device Swap, SIM Swap Subscriptions) and their OAuth 2.0 token endpoint."""

__all__: list[str] = []
