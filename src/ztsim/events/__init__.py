"""One append-only event log for every plane: admin audit, authentication, sessions, DNS."""

__all__: list[str] = []
