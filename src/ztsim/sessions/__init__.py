"""The live session table (UE address <-> SIM <-> identity <-> device <-> gateway),
the address pools that number the sessions, and change notifications that revoke them."""

__all__: list[str] = []
