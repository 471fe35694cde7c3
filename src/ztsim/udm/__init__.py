"""Subscriber authentication for stored SIMs (the UDM/ARPF role): 5G HE vectors with
persistent SQN, resynchronisation, SUCI deconcealment with home-network keys, and
the clone signals these produce. Built on the pure core `ztsim.aka`."""

__all__: list[str] = []
