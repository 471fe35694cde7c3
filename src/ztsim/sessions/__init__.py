"""The live session table (UE address <-> SIM <-> identity <-> device <-> gateway) and
the address pools that number the sessions. (Changes that revoke sessions travel on the
change feed, `ztsim.feed`.)"""

__all__: list[str] = []
